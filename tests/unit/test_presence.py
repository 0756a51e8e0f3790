"""Presence's rules with the fakes: memberships by first and last connection, the live regions, the
frames a membership's change pushes, typing's interval and who it skips, a large room's count
frames, and the keeper's beats, repairs and region changes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat import presence_keeper, presence_stream
from chat.errors import InvalidInput, StoreError
from chat.fanout import RoomFrame
from chat.model import Author
from chat.presence import (
    BEAT_SECONDS,
    LARGE_ROOM,
    MEMBERS_SHOWN,
    STALE_MS,
    Beat,
    Member,
    live_regions,
    membership_frame,
    roster,
)
from chat.service import open_connection, read_presence, send_typing
from chat.settings import Settings
from tests.unit.fakes import FakeConnectionStore, FakePresence, FakeRateLimiter

NOW_MS = 1_790_000_000_000
REGIONS = ("us-east-1", "eu-west-2")


def settings(region: str) -> Settings:
    return Settings(region=region, messages_table="m", connections_table="c", max_connections_per_user=50)


def frame(data: bytes) -> dict[str, object]:
    decoded: dict[str, object] = json.loads(data)
    return decoded


@dataclass
class World:
    """Both regions' connection stores over one global table (replication taken as instant)."""

    presence: FakePresence = field(default_factory=FakePresence)
    stores: dict[str, FakeConnectionStore] = field(default_factory=dict)
    opened: int = 0

    def store(self, region: str) -> FakeConnectionStore:
        if region not in self.stores:
            self.stores[region] = FakeConnectionStore(presence=self.presence, region=region)
            self.stores[region].now = NOW_MS // 1000
        return self.stores[region]

    def connect(self, user: str, region: str, room: str = "r") -> str:
        self.opened += 1
        connection_id = f"c{self.opened}"
        author = Author(user_id=user, name=user.title())
        open_connection(
            connection_id,
            {"room": room},
            author=author,
            store=self.store(region),
            settings=settings(region),
            now_ms=NOW_MS,
        )
        return connection_id

    def close(self, connection_id: str, region: str) -> None:
        self.store(region).delete_connection(connection_id)

    def view(self, region: str, room: str = "r") -> dict[str, object]:
        for r in REGIONS:
            self.presence.beat(Beat(r, NOW_MS))
        return read_presence(room, presence=self.presence, region=region, now_ms=NOW_MS)


def test_a_user_is_listed_once_however_many_tabs_in_however_many_regions_until_the_last_closes() -> None:
    world = World()
    tabs = [
        world.connect("ada", "us-east-1"),
        world.connect("ada", "us-east-1"),
        world.connect("ada", "eu-west-2"),
    ]
    bo = world.connect("bo", "eu-west-2")
    assert world.view("us-east-1") == {
        "count": 2,
        "members": [{"id": "ada", "name": "Ada"}, {"id": "bo", "name": "Bo"}],
        "region": "us-east-1",
    }
    assert len(world.presence.memberships) == 3  # ada here and there, bo: one per user and region
    world.close(tabs[0], "us-east-1")
    world.close(tabs[2], "eu-west-2")
    assert world.view("eu-west-2")["count"] == 2
    world.close(tabs[1], "us-east-1")
    assert world.view("eu-west-2")["members"] == [{"id": "bo", "name": "Bo"}]
    world.close(bo, "eu-west-2")
    assert world.view("us-east-1") == {"count": 0, "members": [], "region": "us-east-1"}


@st.composite
def sessions(draw: st.DrawFn) -> list[tuple[str, str, int]]:
    """Opens and closes: ("open", user@region, _) or ("close", _, index of an open connection)."""
    steps = []
    for _ in range(draw(st.integers(1, 30))):
        if draw(st.booleans()):
            user = draw(st.sampled_from(["ada", "bo", "cy"]))
            steps.append(("open", f"{user}@{draw(st.sampled_from(REGIONS))}", 0))
        else:
            steps.append(("close", "", draw(st.integers(0, 40))))
    return steps


@given(sessions())
def test_presence_is_always_exactly_the_users_with_an_open_connection(
    steps: list[tuple[str, str, int]],
) -> None:
    world = World()
    open_now: list[tuple[str, str, str]] = []  # (connection, user, region)
    for action, who, index in steps:
        if action == "open":
            user, region = who.split("@")
            open_now.append((world.connect(user, region), user, region))
        elif open_now:
            connection_id, _, region = open_now.pop(index % len(open_now))
            world.close(connection_id, region)
        expected = sorted({user for _, user, _ in open_now})
        for region in REGIONS:
            seen = world.view(region)
            assert [m["id"] for m in seen["members"]] == expected  # type: ignore[attr-defined]
            assert seen["count"] == len(expected)


@dataclass
class Replica:
    """One region's copy of a room's memberships, its stream, and what its clients were told."""

    items: dict[tuple[str, str], Member] = field(default_factory=dict)  # (user, region) -> membership
    stream: list[tuple[Member, bool]] = field(default_factory=list)  # (image, INSERT?) not yet handled
    inbound: list[tuple[Member, bool]] = field(default_factory=list)  # replication not yet applied
    shown: set[str] = field(default_factory=set)  # the member list a client keeps from the frames

    def apply(self, member: Member, entered: bool) -> None:
        key = (member.user_id, member.region)
        if entered:
            self.items[key] = member
        else:
            self.items.pop(key, None)
        self.stream.append((member, entered))

    def handle_next(self, live: set[str]) -> None:
        member, entered = self.stream.pop(0)
        pushed = membership_frame(member, entered=entered, members=list(self.items.values()), live=live)
        if pushed is not None:
            event = frame(pushed)
            if event["event"] == "enter":
                self.shown.add(member.user_id)
            else:
                self.shown.discard(member.user_id)


@given(st.lists(st.tuples(st.sampled_from(["write", "replicate", "handle"]), st.integers(0, 5)), max_size=60))
def test_every_regions_clients_end_with_exactly_the_members_whatever_the_replication_and_stream_lag(
    steps: list[tuple[str, int]],
) -> None:
    """The oracle is the contract: once every change has replicated and every stream record has
    been handled, the member list a client built from `enter`/`leave` frames alone is, in every
    region, exactly the users with a membership: for any interleaving of writes in either region,
    replication, and stream handling that reads the table later than the change it handles."""
    live = set(REGIONS)
    replicas = {region: Replica() for region in REGIONS}
    clock = NOW_MS

    def replicate(source: str) -> None:
        other = replicas[next(r for r in REGIONS if r != source)]
        # replication keeps each item's order; both regions' writes to one user never share a key
        other.apply(*other.inbound.pop(0))

    for action, n in steps:
        region = REGIONS[n % 2]
        replica = replicas[region]
        if action == "write":
            user = ("ada", "bo", "cy")[n % 3]
            clock += 1
            present = (user, region) in replica.items
            member = replica.items.get((user, region)) or Member("r", user, user, region, since_ms=clock)
            replica.apply(member, not present)
            replicas[next(r for r in REGIONS if r != region)].inbound.append((member, not present))
        elif action == "replicate" and replica.inbound:
            replica.apply(*replica.inbound.pop(0))
        elif action == "handle" and replica.stream:
            replica.handle_next(live)
    for replica in replicas.values():
        while replica.inbound:
            replica.apply(*replica.inbound.pop(0))
    for replica in replicas.values():
        while replica.stream:
            replica.handle_next(live)
    members = {user for user, _ in replicas[REGIONS[0]].items}
    for region, replica in replicas.items():
        assert replica.shown == members, region


def test_a_release_that_lost_the_race_never_deletes_a_newer_membership() -> None:
    presence = FakePresence()
    presence.enter(Member("r", "ada", "Ada", "us-east-1", seq=7))  # a claim after the release's
    presence.leave("r", "ada", "us-east-1", seq=6)  # the earlier release's delete, arriving late
    assert list(presence.memberships) == [("r", "ada", "us-east-1")]
    presence.enter(Member("r", "ada", "Ada", "us-east-1", seq=5))  # an older claim's write, late
    assert presence.memberships[("r", "ada", "us-east-1")].seq == 7


def test_live_regions_are_this_one_and_those_that_beat_within_the_stale_limit() -> None:
    beats = [Beat("eu-west-2", NOW_MS - STALE_MS), Beat("ap-south-1", NOW_MS - STALE_MS - 1)]
    assert live_regions(beats, own="us-east-1", now_ms=NOW_MS) == {"us-east-1", "eu-west-2"}
    assert live_regions([], own="us-east-1", now_ms=NOW_MS) == {"us-east-1"}


def test_the_roster_counts_everyone_shows_the_first_hundred_by_name_and_hides_dead_regions() -> None:
    members = [Member("r", f"u{n:03}", f"name {n:03}", "us-east-1") for n in range(MEMBERS_SHOWN + 20)]
    members += [Member("r", "ghost", "Ghost", "eu-west-2")]
    current = roster(members, {"us-east-1"})
    assert current.count == MEMBERS_SHOWN + 20
    shown = current.shown()
    assert len(shown) == MEMBERS_SHOWN
    assert shown[0] == {"id": "u000", "name": "name 000"}
    assert "ghost" not in current.names
    # names that differ only in case are one name: their ids order them (docs/api.md)
    alike = roster(
        [Member("r", "u2", "Ada", "us-east-1"), Member("r", "u1", "ada", "us-east-1")], {"us-east-1"}
    )
    assert alike.shown() == [{"id": "u1", "name": "ada"}, {"id": "u2", "name": "Ada"}]


def test_a_membership_change_pushes_enter_and_leave_only_when_it_changes_who_is_there() -> None:
    live = {"us-east-1", "eu-west-2"}
    ada_us = Member("r", "ada", "Ada", "us-east-1", since_ms=NOW_MS)
    ada_eu = Member("r", "ada", "Ada", "eu-west-2", since_ms=NOW_MS + 30)  # her second tab, in London
    bo = Member("r", "bo", "Bo", "us-east-1")
    entered = membership_frame(ada_us, entered=True, members=[ada_us, bo], live=live)
    assert entered is not None
    assert frame(entered) == {
        "type": "presence",
        "event": "enter",
        "user": {"id": "ada", "name": "Ada"},
        "count": 2,
    }
    # present through another region already: no frame, either way
    assert membership_frame(ada_eu, entered=True, members=[ada_us, ada_eu, bo], live=live) is None
    # the older tab's INSERT handled after the newer one replicated here: still her `enter`
    assert membership_frame(ada_us, entered=True, members=[ada_us, ada_eu, bo], live=live) == entered
    assert membership_frame(ada_eu, entered=False, members=[ada_us, bo], live=live) is None
    left = membership_frame(ada_us, entered=False, members=[bo], live=live)
    assert left is not None
    assert frame(left)["event"] == "leave"
    assert frame(left)["count"] == 1
    # a dead region's memberships: its users left when it died
    assert membership_frame(ada_eu, entered=False, members=[bo], live={"us-east-1"}) is None


def changed(member: Member, *, entered: bool, seq: str = "1") -> presence_stream.MembershipChanged:
    return presence_stream.MembershipChanged(seq, member, entered=entered)


def test_a_large_room_gets_count_frames_at_most_as_often_as_the_limiter_admits() -> None:
    presence = FakePresence()
    for n in range(LARGE_ROOM + 1):
        presence.enter(Member("big", f"u{n}", f"U{n}", "us-east-1", seq=1))
    newcomer = Member("big", "u0", "U0", "us-east-1")
    limiter = FakeRateLimiter()
    out = presence_stream.frames_for(
        [changed(newcomer, entered=True)],
        presence=presence,
        limiter=limiter,
        region="us-east-1",
        now_ms=NOW_MS,
    )
    assert [frame(f.frame) for f in out.frames] == [
        {"type": "presence", "event": "count", "count": LARGE_ROOM + 1}
    ]
    assert limiter.asked == ["presence-count#big"]
    throttled = FakeRateLimiter(waits={"presence-count#big": 4000})
    out = presence_stream.frames_for(
        [changed(newcomer, entered=True)],
        presence=presence,
        limiter=throttled,
        region="us-east-1",
        now_ms=NOW_MS,
    )
    assert out.frames == []


def test_a_region_change_in_a_large_room_sends_its_count_only_when_the_rooms_limiter_admits_it() -> None:
    # given a large room whose members are in eu-west-2, which has just died
    presence = FakePresence()
    for n in range(LARGE_ROOM + 1):
        presence.enter(Member("big", f"u{n}", f"U{n}", "eu-west-2", seq=1))
    both, us = set(REGIONS), {"us-east-1"}

    def frames(limiter: FakeRateLimiter) -> list[dict[str, object]]:
        pushed = presence_keeper.transition_frames(
            ["eu-west-2"], both, us, presence=presence, limiter=limiter, now_ms=NOW_MS
        )
        return [frame(f.frame) for f in pushed]

    # then one count frame, as the stream handler's: through the same limiter
    assert frames(FakeRateLimiter()) == [{"type": "presence", "event": "count", "count": 0}]
    # and none within 5 s of another count frame of the room in this region
    assert frames(FakeRateLimiter(waits={"presence-count#big": 4000})) == []


def test_typing_skips_the_typists_own_socket_only_in_its_own_region() -> None:
    typed = presence_stream.Typed("9", "r", Author("ada", "Ada"), "us-east-1", "conn-ada")
    here = presence_stream.frames_for(
        [typed], presence=FakePresence(), limiter=FakeRateLimiter(), region="us-east-1", now_ms=NOW_MS
    )
    there = presence_stream.frames_for(
        [typed], presence=FakePresence(), limiter=FakeRateLimiter(), region="eu-west-2", now_ms=NOW_MS
    )
    assert [(f.room, f.skip) for f in here.frames] == [("r", "conn-ada")]
    assert [(f.room, f.skip) for f in there.frames] == [("r", None)]
    assert frame(here.frames[0].frame) == {"type": "typing", "user": {"id": "ada", "name": "Ada"}}


def test_an_unreadable_room_fails_its_record_for_the_stream_to_retry() -> None:
    presence = FakePresence()
    presence.fail = StoreError("Query", "ThrottlingException")
    out = presence_stream.frames_for(
        [changed(Member("r", "ada", "Ada", "us-east-1"), entered=True, seq="42")],
        presence=presence,
        limiter=FakeRateLimiter(),
        region="us-east-1",
        now_ms=NOW_MS,
    )
    assert (out.frames, out.failed) == ([], ["42"])


def test_typing_goes_out_at_most_once_per_user_per_two_seconds_and_refuses_a_bad_room() -> None:
    presence = FakePresence()
    author = Author("ada", "Ada")

    def typing(at_ms: int, body: object = None, *, connected_to: str = "r") -> bool:
        return send_typing(
            body or {"room": "r"},
            author=author,
            connection_id="c",
            connection_room=connected_to,
            presence=presence,
            region="us-east-1",
            now_ms=at_ms,
        )

    assert [typing(NOW_MS), typing(NOW_MS + 1999), typing(NOW_MS + 2000)] == [True, False, True]
    # her tab in another room: per user, whatever the room
    assert not typing(NOW_MS + 2500, {"room": "another"}, connected_to="another")
    assert typing(NOW_MS + 4000, {"room": "another"}, connected_to="another")
    # a room the connection is not in: dropped quietly, nothing written
    writes = len(presence.typing_writes)
    assert not typing(NOW_MS + 9000, {"room": "elsewhere"})
    assert len(presence.typing_writes) == writes
    with pytest.raises(InvalidInput, match="room"):
        typing(NOW_MS + 9000, {"room": "Not A Room"})
    with pytest.raises(InvalidInput):
        typing(NOW_MS + 9000, ["r"])


class FakeCloser:
    def __init__(self, open_ids: set[str], unanswered: set[str] | None = None) -> None:
        self.open_ids = open_ids
        self.unanswered = unanswered or set()
        self.asked: list[str] = []

    def is_open(self, connection_id: str) -> bool:
        self.asked.append(connection_id)
        if connection_id in self.unanswered:
            raise StoreError("GetConnection", "InternalServerErrorException")
        return connection_id in self.open_ids

    def close_user(self, user_id: str) -> int:
        raise AssertionError("the keeper closes nobody")


@dataclass
class Clock:
    now: float = NOW_MS / 1000
    deadline: float = NOW_MS / 1000 + 58

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def remaining_ms(self) -> int:
        return int((self.deadline - self.now) * 1000)


def keep(
    world: World,
    region: str,
    clock: Clock,
    closer: FakeCloser,
    pushed: list[RoomFrame],
    concurrency: int = 1,
) -> presence_keeper.KeeperReport:
    keeper = presence_keeper.Keeper(
        region,
        presence=world.presence,
        connections=world.store(region),
        closer=closer,
        push=pushed.extend,
        limiter=FakeRateLimiter(),
        connection_ttl_seconds=7500,
        clock=clock,
        concurrency=concurrency,
    )
    return keeper.keep(sleep=clock.sleep, remaining_ms=clock.remaining_ms)


def test_a_region_back_from_the_dead_forgets_its_gone_connections_before_it_beats_again() -> None:
    world = World()
    gone = world.connect("ada", "eu-west-2")
    kept = world.connect("bo", "eu-west-2")
    unknown = world.connect("cy", "eu-west-2")  # API Gateway cannot say: kept
    world.presence.beat(Beat("eu-west-2", NOW_MS - 10 * 60_000))  # its last beat, ten minutes ago
    clock = Clock(now=NOW_MS / 1000 + 60, deadline=NOW_MS / 1000 + 60 + 58)  # a minute on: past the grace
    closer = FakeCloser(open_ids={kept}, unanswered={unknown})
    pushed: list[RoomFrame] = []
    report = keep(world, "eu-west-2", clock, closer, pushed)
    assert report.new_run
    assert report.repaired
    assert sorted(closer.asked) == sorted([gone, kept, unknown])
    assert report.connections_forgotten == 1
    assert sorted(u for (_, u, _) in world.presence.memberships) == ["bo", "cy"]
    # it beat every BEAT_SECONDS while the invocation had time for another
    assert report.beats == 4
    assert BEAT_SECONDS == 15
    assert world.presence.beat_items["eu-west-2"].beat_at_ms == int(clock.now * 1000)


def test_a_keeper_in_good_health_asks_api_gateway_nothing_and_repairs_once_an_hour() -> None:
    world = World()
    world.connect("ada", "us-east-1")
    world.presence.beat(
        Beat("us-east-1", NOW_MS - 5_000, frozenset({"us-east-1"}), reconciled_at_ms=NOW_MS - 60_000)
    )
    closer = FakeCloser(open_ids=set())
    report = keep(world, "us-east-1", Clock(), closer, [])
    assert (report.new_run, report.repaired, closer.asked) == (False, False, [])
    assert len(world.presence.memberships) == 1


def test_the_hourly_repair_comes_after_a_beat_and_forgets_memberships_no_connection_holds() -> None:
    # given a region in good health, last repaired an hour ago, holding 30 memberships of users
    # with no connection here (their `$disconnect`s were lost) besides ada's
    world = World()
    world.connect("ada", "us-east-1")
    for n in range(30):
        world.presence.enter(Member("r", f"gone{n:02}", "Gone", "us-east-1", seq=1))
    last = Beat("us-east-1", NOW_MS - 5_000, frozenset({"us-east-1"}), reconciled_at_ms=NOW_MS - 3_600_000)
    world.presence.beat(last)
    writes: list[str] = []
    beat, leave = world.presence.beat, world.presence.leave
    world.presence.beat = lambda b: (writes.append("beat"), beat(b))[1]  # type: ignore[method-assign]
    world.presence.leave = lambda *a, **k: (writes.append("leave"), leave(*a, **k))[1]  # type: ignore[method-assign]
    clock = Clock(deadline=NOW_MS / 1000 + 1)  # one tick
    closer = FakeCloser(open_ids=set())
    # when its keeper runs, repairing 8 users at a time
    report = keep(world, "us-east-1", clock, closer, [], concurrency=8)
    # then it beat first (a long repair never makes it late), then forgot the 30 (asking API
    # Gateway nothing: it was not dead), then beat again to say when it repaired
    assert writes == ["beat", *["leave"] * 30, "beat"]
    assert [u for (_, u, _) in world.presence.memberships] == ["ada"]
    assert (report.repaired, report.new_run, report.memberships_removed, closer.asked) == (
        True,
        False,
        30,
        [],
    )
    assert world.presence.beat_items["us-east-1"].reconciled_at_ms == NOW_MS


def test_when_another_region_dies_its_users_leave_and_when_it_returns_they_enter() -> None:
    world = World()
    world.connect("ada", "us-east-1")
    world.connect("bo", "eu-west-2")
    world.connect("cy", "eu-west-2")
    world.connect("cy", "us-east-1")  # cy is here too: stays
    both = frozenset(REGIONS)
    world.presence.beat(Beat("us-east-1", NOW_MS - 5_000, both, reconciled_at_ms=NOW_MS))
    world.presence.beat(Beat("eu-west-2", NOW_MS - STALE_MS - 1))  # eu stopped beating
    pushed: list[RoomFrame] = []
    report = keep(world, "us-east-1", Clock(deadline=NOW_MS / 1000 + 1), FakeCloser(set()), pushed)
    assert report.regions_changed == ["eu-west-2"]
    assert [frame(f.frame) for f in pushed] == [
        {"type": "presence", "event": "leave", "user": {"id": "bo", "name": "Bo"}, "count": 2}
    ]
    # eu beats again: bo enters
    world.presence.beat(Beat("eu-west-2", NOW_MS))
    pushed.clear()
    keep(world, "us-east-1", Clock(deadline=NOW_MS / 1000 + 1), FakeCloser(set()), pushed)
    assert [frame(f.frame)["event"] for f in pushed] == ["enter"]


def test_a_keeper_whose_table_fails_beats_again_once_it_heals_and_repairs_first_after_a_dead_spell() -> None:
    world = World()
    gone = world.connect("ada", "us-east-1")
    world.presence.beat(Beat("us-east-1", NOW_MS - 5_000, frozenset({"us-east-1"}), reconciled_at_ms=NOW_MS))
    clock = Clock(deadline=NOW_MS / 1000 + 73)  # five ticks: at 0, 15, 30, 45 and 60 s
    failing = StoreError("Query", "InternalServerError")
    world.presence.fail = failing
    ticks: list[float] = []

    def sleep(seconds: float) -> None:
        ticks.append(clock.now)
        clock.sleep(seconds)
        if len(ticks) == 3:  # DynamoDB comes back before the fourth tick
            world.presence.fail = None

    keeper = presence_keeper.Keeper(
        "us-east-1",
        presence=world.presence,
        connections=world.store("us-east-1"),
        closer=FakeCloser(open_ids=set()),
        push=lambda frames: None,
        limiter=FakeRateLimiter(),
        connection_ttl_seconds=7500,
        clock=clock,
    )
    report = keeper.keep(sleep=sleep, remaining_ms=clock.remaining_ms)
    # three ticks failed, then it beat again: after a dead spell (its last beat 50 s old), it
    # first asked API Gateway about its connections and forgot the gone one
    assert report.errors == [str(failing)] * 3
    assert report.beats == 2
    assert report.new_run
    assert report.connections_forgotten == 1
    assert gone in world.store("us-east-1").deleted

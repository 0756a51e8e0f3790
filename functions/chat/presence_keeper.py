"""A region's presence keeper (chat/presence.py): invoked every minute, it beats every
BEAT_SECONDS for most of the minute, so the other regions know its memberships are live; it
tells this region's connections when another region dies or comes back (the users present only
through it leave or enter); and it repairs this region's memberships.

Repair: every membership this region holds is checked against the user's connection slots here
(a membership whose connections have all expired or gone is deleted). After the region was dead
to the others (its last beat older than STALE_MS: it was down, or its Lambda or DynamoDB failed),
each connection is also asked of API Gateway before the region beats again, so the region comes
back without ghosts: its clients have left by then, and no `$disconnect` deleted them. Else the
repair runs once an hour (API Gateway's 2-hour limit, a `$disconnect` that failed)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from chat.errors import StoreError
from chat.fanout import CONNECT_GRACE_SECONDS, RoomFrame
from chat.ports import ConnectionCloser, ConnectionRepair, PresenceStore, RateLimiter
from chat.presence import (
    BEAT_SECONDS,
    LARGE_ROOM,
    STALE_MS,
    Beat,
    changed_users,
    count_frame,
    live_regions,
    presence_frame,
    roster,
)
from chat.presence_stream import count_frame_admitted

REPAIR_EVERY_MS = 3_600_000
KEEPER_RECORD = "presence-keeper"  # the sequence number its frames carry (nothing to retry)


@dataclass
class KeeperReport:
    beats: int = 0
    new_run: bool = False
    repaired: bool = False
    connections_forgotten: int = 0
    memberships_removed: int = 0
    frames: int = 0
    regions_changed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # ticks that failed (and beat nothing)
    last_live: frozenset[str] = frozenset()  # the live regions at the last beat


def repair(
    region: str,
    *,
    presence: PresenceStore,
    connections: ConnectionRepair,
    closer: ConnectionCloser | None,
    connection_ttl_seconds: int,
    now_ms: int,
    report: KeeperReport,
    concurrency: int = 1,
) -> None:
    """Delete this region's memberships that no live connection holds. With `closer`, each
    connection older than the connect grace is asked of API Gateway, and forgotten if gone. The
    users are checked `concurrency` at a time (a read, and API Gateway's answers, each), not one
    after another."""
    rooms_of: dict[str, set[str]] = defaultdict(set)
    for room, user_id in presence.region_members(region):
        rooms_of[user_id].add(room)
    connected_before_s = now_ms // 1000 - CONNECT_GRACE_SECONDS

    def repair_user(user_id: str, rooms: set[str]) -> tuple[int, int]:
        """(connections forgotten, memberships removed) of one user."""
        forgotten = 0
        held, seq = connections.user_connections(user_id)
        live_rooms: set[str] = set()
        for connection_id, held_room, expires_at in held:
            old = expires_at - connection_ttl_seconds < connected_before_s
            if closer is not None and old and not _is_open(closer, connection_id):
                connections.delete_connection(connection_id)  # its membership too, if it was the last
                forgotten += 1
                continue
            if held_room is None:  # an entry from before entries named their room: keep them all
                live_rooms |= rooms
            else:
                live_rooms.add(held_room)
        # Memberships written before the slot was read carry at most its sequence number. With
        # no slot item, a claim made from now on numbers from its clock (connection_slots.py):
        # delete only what a claim older than the connect grace wrote.
        up_to = seq + 1 if seq is not None else connected_before_s * 1000
        empty = sorted(rooms - live_rooms)
        for room in empty:
            connections.leave_room_if_empty(room, user_id, seq=up_to)
        return forgotten, len(empty)

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(rooms_of)))) as pool:
        for forgotten, removed in pool.map(lambda user: repair_user(*user), rooms_of.items()):
            report.connections_forgotten += forgotten
            report.memberships_removed += removed


def _is_open(closer: ConnectionCloser, connection_id: str) -> bool:
    """API Gateway's answer; a connection it cannot answer for is kept (the hourly repair, its
    `$disconnect` or its expiry forget it later), so a failing management API never stops a
    region from beating again."""
    try:
        return closer.is_open(connection_id)
    except StoreError:
        return True


def transition_frames(
    changed: Sequence[str],
    before: set[str],
    after: set[str],
    *,
    presence: PresenceStore,
    limiter: RateLimiter,
    now_ms: int,
) -> list[RoomFrame]:
    """When the live regions go from `before` to `after`: each room where one of the `changed`
    regions holds memberships gets an `enter` or `leave` for every user that makes present or
    absent (a large room a `count`, if its limiter admits one)."""
    rooms = sorted({room for region in changed for room, _ in presence.region_members(region)})
    frames: list[RoomFrame] = []
    for room in rooms:
        members, _ = presence.members(room)
        changes = changed_users(members, before, after)
        count = roster(members, after).count
        if not changes:
            continue
        if count > LARGE_ROOM or len(changes) > LARGE_ROOM:
            if count_frame_admitted(room, limiter=limiter, now_ms=now_ms):
                frames.append(RoomFrame(KEEPER_RECORD, room, count_frame(count)))
            continue
        for user_id, (event, name) in sorted(changes.items()):
            frames.append(RoomFrame(KEEPER_RECORD, room, presence_frame(event, user_id, name, count)))
    return frames


@dataclass(frozen=True)
class Keeper:
    """This region's keeper and what it works with: the stores, API Gateway's answers about
    connections (`closer`), where its frames go (`push`: the fan-out) and the clock."""

    region: str
    presence: PresenceStore
    connections: ConnectionRepair
    closer: ConnectionCloser
    push: Callable[[list[RoomFrame]], None]
    limiter: RateLimiter  # a large room's count frames, shared with the stream handler's
    connection_ttl_seconds: int
    clock: Callable[[], float]
    concurrency: int = 1  # users repaired at a time

    def keep(self, *, sleep: Callable[[float], None], remaining_ms: Callable[[], int]) -> KeeperReport:
        """One invocation: beat every BEAT_SECONDS while the invocation has time for another,
        each beat pushing the frames of a change in which regions are live. Before a beat that
        follows a dead spell (this region's last beat is stale: it was down, or could not beat),
        the repair with API Gateway's answers; else the plain repair once an hour. A tick that
        fails (this region's DynamoDB failing) is counted and the next one tries again, so beats
        resume within BEAT_SECONDS of the fault's end."""
        report = KeeperReport()
        previous: set[str] | None = None  # the live regions at this invocation's last beat
        while True:
            try:
                self._tick(report, previous)
                previous = set(report.last_live)
            except StoreError as error:
                report.errors.append(str(error))
                previous = None  # beats missed: the next one starts again from what it sees
            if remaining_ms() < (BEAT_SECONDS + 3) * 1000:
                return report
            sleep(BEAT_SECONDS)

    def _tick(self, report: KeeperReport, previous: set[str] | None) -> None:
        now_ms = int(self.clock() * 1000)
        beats = self.presence.beats()
        own = next((b for b in beats if b.region == self.region), None)
        dead_spell = own is None or now_ms - own.beat_at_ms > STALE_MS
        reconciled_at = own.reconciled_at_ms if own is not None else 0
        if dead_spell:  # no beat before the repair: back without ghosts
            self._repair(report, now_ms, ask_api_gateway=True)
            reconciled_at = now_ms
            report.new_run = True
        # What the regions looked like at the last beat: this invocation's, else this region's
        # last one (after a dead spell that view is stale: start from what it sees now).
        if previous is None and own is not None and not dead_spell:
            previous = set(own.live)
        live = live_regions(beats, own=self.region, now_ms=now_ms)
        if previous is not None and live != previous:
            changed = sorted(live ^ previous)
            report.regions_changed.extend(changed)
            frames = transition_frames(
                changed, previous, live, presence=self.presence, limiter=self.limiter, now_ms=now_ms
            )
            self.push(frames)
            report.frames += len(frames)
        self.presence.beat(Beat(self.region, now_ms, frozenset(live), reconciled_at))
        report.beats += 1
        report.last_live = frozenset(live)
        if now_ms - reconciled_at >= REPAIR_EVERY_MS:  # the hourly repair, after the beat
            self._repair(report, now_ms, ask_api_gateway=False)
            # and beat again, saying when it repaired (the next ticks read it from the beat)
            self.presence.beat(Beat(self.region, int(self.clock() * 1000), frozenset(live), now_ms))

    def _repair(self, report: KeeperReport, now_ms: int, *, ask_api_gateway: bool) -> None:
        repair(
            self.region,
            presence=self.presence,
            connections=self.connections,
            closer=self.closer if ask_api_gateway else None,
            connection_ttl_seconds=self.connection_ttl_seconds,
            now_ms=now_ms,
            report=report,
            concurrency=self.concurrency,
        )
        report.repaired = True

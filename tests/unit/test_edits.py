"""The state rules of edits and deletes (chat/edits.py), played on a model of two regions whose
tables replicate as global tables do: asynchronously, in any order, last writer wins on the whole
item. Each region's stream handler applies `on_write` and the tombstone rule; each region has a
client that keeps the greatest state pushed to it."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat.edits import (
    deleted,
    edited,
    on_write,
    parse_change,
    rank,
    regressed,
    supersedes,
)
from chat.errors import InvalidInput, MessageDeleted
from chat.model import Change

REGIONS = ("us-east-1", "eu-west-2")
POSTED = Change(version=1, text="hello")


@dataclass
class Region:
    name: str
    item: Change | None = None
    stamp: tuple[int, str] = (0, "")
    tombstone: bool = False
    # Each write this region's table took (old, new, the region that made it); None: a tombstone.
    stream: list[tuple[Change | None, Change, str] | None] = field(default_factory=list)
    client: Change | None = None


@dataclass
class World:
    """Two regions, replication in flight, and a clock (the timestamps last writer wins reads)."""

    regions: dict[str, Region] = field(default_factory=lambda: {r: Region(r) for r in REGIONS})
    in_flight: list[tuple[str, Change | None, tuple[int, str]]] = field(default_factory=list)
    clock: int = 0
    deletes: int = 0
    skew: dict[str, int] = field(default_factory=dict)  # how far ahead a region's clock runs
    causal: bool = True

    def tick(self) -> int:
        self.clock += 1
        return self.clock

    def write(self, region: Region, change: Change) -> None:
        """A local write: applied here at once, replicated later. Its stamp is the region's clock;
        `causal`: never before the stamp of what it replaces (else even an update made after
        another arrived can lose to it, when its region's clock is behind)."""
        clock = self.tick() + self.skew.get(region.name, 0)
        stamp = (max(clock, region.stamp[0] + 1) if self.causal else clock, region.name)
        region.stream.append((region.item, change, region.name))
        region.item, region.stamp = change, stamp
        self.in_flight += [(other, change, stamp) for other in self.regions if other != region.name]

    def write_tombstone(self, region: Region) -> None:
        if not region.tombstone:
            region.tombstone = True
            region.stream.append(None)
            self.in_flight += [(other, None, (0, "")) for other in self.regions if other != region.name]

    def deliver(self, index: int) -> None:
        target, change, stamp = self.in_flight.pop(index % len(self.in_flight))
        region = self.regions[target]
        if change is None:  # a tombstone: only deletes write one, so no conflict to resolve
            if not region.tombstone:
                region.tombstone = True
                region.stream.append(None)
        elif region.item is None or region.stamp < stamp:  # last writer wins, on the whole item
            region.stream.append((region.item, change, stamp[1]))
            region.item, region.stamp = change, stamp

    def run_stream(self, region: Region) -> None:
        """The region's stream handler takes its oldest record (chat/handlers/fanout.py)."""
        record = region.stream.pop(0)
        if record is None:  # a tombstone arrived: delete this region's copy, if it has one
            if region.item is not None and (after := deleted(region.item)) is not None:
                self.write(region, after)
            return
        old, new, origin = record
        step = on_write(old, new, accepted_here=origin == region.name)
        if step.push and (region.client is None or supersedes(new, region.client)):
            region.client = new
        # The rewrite is conditional: only while the item holds a state it outranks.
        if step.rewrite is not None and region.item is not None and regressed(step.rewrite, region.item):
            self.write(region, step.rewrite)
        if step.tombstone:
            self.write_tombstone(region)

    def act(self, action: tuple[str, int, str]) -> None:
        kind, index, text = action
        region = self.regions[REGIONS[index % 2]]
        if kind == "post" and region.item is None:
            self.write(region, POSTED)  # the author's retry lands here before replication
        elif kind == "edit" and region.item is not None:
            try:
                after = edited(region.item, text, now=f"{self.tick():06d}")
            except MessageDeleted:
                return
            if after is not None:
                self.write(region, after)
        elif kind == "delete" and region.item is not None:
            if (after := deleted(region.item)) is not None:
                self.deletes += 1
                self.write(region, after)
        elif kind == "deliver" and self.in_flight:
            self.deliver(index)
        elif kind == "stream" and region.stream:
            self.run_stream(region)

    def settle(self) -> None:
        while self.in_flight or any(r.stream for r in self.regions.values()):
            if self.in_flight:
                self.deliver(0)
            for region in self.regions.values():
                while region.stream:
                    self.run_stream(region)


actions = st.lists(
    st.tuples(
        st.sampled_from(["post", "edit", "delete", "deliver", "deliver", "stream", "stream"]),
        st.integers(0, 7),
        st.sampled_from(["hi", "hey", "hello", "Hi"]),
    ),
    max_size=40,
)


@given(actions)
def test_any_interleaving_of_posts_edits_and_deletes_in_two_regions_ends_in_one_state_everywhere(
    script: list[tuple[str, int, str]],
) -> None:
    # Given a message posted in one region, then edits, deletes, replication deliveries and
    # stream runs in both regions, interleaved in any order
    world = World()
    world.act(("post", 0, ""))
    for action in script:
        world.act(action)
    # When replication and the streams have run
    world.settle()
    # Then both regions' tables hold the same state, and so does every region's client
    finals = {name: region.item for name, region in world.regions.items()}
    assert len(set(finals.values())) == 1
    final = finals[REGIONS[0]]
    assert final is not None
    for region in world.regions.values():
        assert region.client == final


@given(actions, st.sampled_from([0, 3, 1000]), st.sampled_from(REGIONS), st.booleans())
def test_a_message_deleted_anywhere_ends_deleted_with_no_text_in_every_region_whatever_the_clocks(
    script: list[tuple[str, int, str]], skew: int, ahead: str, causal: bool
) -> None:
    # Given one region's clock (the one last writer wins reads) ahead of the other's, by up to
    # far longer than replication takes, whether or not a write's stamp is kept after the stamp
    # of what it replaces
    world = World(skew={ahead: skew}, causal=causal)
    world.act(("post", 0, ""))
    for action in script:
        world.act(action)
    world.settle()
    # Then a message deleted anywhere is deleted with no text everywhere, and so it shows
    if world.deletes:
        for region in world.regions.values():
            assert region.item is not None
            assert region.item.deleted
            assert region.item.text is None
            assert region.client is not None
            assert region.client.deleted
    # and, while a write outlives what its region held, every region holds the same text (without
    # that even a later edit can lose to the one it replaced: last writer wins, not these rules)
    if causal:
        assert len({region.item.text for region in world.regions.values() if region.item}) == 1


@given(actions)
def test_a_client_that_has_seen_a_delete_never_shows_the_message_again(
    script: list[tuple[str, int, str]],
) -> None:
    world = World()
    world.act(("post", 0, ""))
    shown_deleted: set[str] = set()
    for action in [*script, *[("stream", i, "") for i in range(8)]]:
        world.act(action)
        for region in world.regions.values():
            if region.name in shown_deleted:
                assert region.client is not None
                assert region.client.deleted
            if region.client is not None and region.client.deleted:
                shown_deleted.add(region.name)


def test_two_concurrent_edits_converge_on_the_later_edit_in_both_regions() -> None:
    # Given an edit accepted in each region before either replicates, the eu-west-2 one later
    world = World()
    world.act(("post", 0, ""))
    world.deliver(0)
    world.act(("edit", 0, "first"))
    world.act(("edit", 1, "second"))
    # When replication runs, the earlier edit's write arriving last (so it wins last writer wins)
    world.deliver(1)
    world.deliver(0)
    world.settle()
    # Then both regions and both clients hold the later edit
    for region in world.regions.values():
        assert region.item is not None
        assert region.item.text == "second"
        assert region.client == region.item


def test_an_edit_in_one_region_after_a_delete_in_the_other_ends_deleted_in_both() -> None:
    # Given a message in both regions, deleted in us-east-1 and then edited in eu-west-2
    world = World()
    world.act(("post", 0, ""))
    world.deliver(0)
    world.act(("delete", 0, ""))
    world.act(("edit", 1, "back from the dead"))
    # When replication delivers both (the later edit wins last writer wins in both tables)
    world.settle()
    # Then the message is deleted in both regions, with no text, and both clients show it deleted
    for region in world.regions.values():
        assert region.item is not None
        assert region.item.deleted
        assert region.item.text is None
        assert region.client is not None
        assert region.client.deleted


def test_deleted_outranks_any_edit_and_a_higher_version_outranks_a_lower() -> None:
    gone = Change(version=2, deleted=True)
    assert supersedes(gone, Change(version=9, text="x", editedAt="2026-12-03T18:00:00.000Z"))
    assert supersedes(Change(version=3, text="a"), Change(version=2, text="z"))
    same_version = [Change(2, "b", "2026-12-03T18:00:00.001Z"), Change(2, "a", "2026-12-03T18:00:00.002Z")]
    assert max(same_version, key=rank).text == "a"  # the later edit
    assert not supersedes(POSTED, POSTED)


def test_an_edit_of_a_deleted_message_is_refused_and_a_second_delete_changes_nothing() -> None:
    gone = deleted(POSTED)
    assert gone == Change(version=2, text=None, editedAt=None, deleted=True)
    with pytest.raises(MessageDeleted):
        edited(gone, "again", now="2026-12-03T18:00:00.000Z")
    assert deleted(gone) is None


def test_an_edit_to_the_same_text_changes_nothing() -> None:
    assert edited(POSTED, "hello", now="2026-12-03T18:00:00.000Z") is None
    assert edited(POSTED, "hullo", now="t") == Change(version=2, text="hullo", editedAt="t")


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ([], "invalid_message"),
        ({"room": "r", "id": "01J0000000000000000000000A"}, "missing_field"),
        ({"room": "r", "id": "01J0000000000000000000000A", "text": "  "}, "invalid_text"),
        ({"room": "r", "id": "01J0000000000000000000000A", "text": "x" * 4001}, "text_too_long"),
        ({"room": "R!", "id": "01J0000000000000000000000A", "text": "x"}, "invalid_room"),
        ({"room": "r", "id": "not-a-ulid", "text": "x"}, "invalid_id"),
        ({"room": "r", "id": 7, "text": "x"}, "invalid_id"),
    ],
)
def test_a_bad_edit_is_refused_with_the_new_message_codes(payload: object, code: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_change(payload, edit=True)
    assert refused.value.code == code


def test_an_old_message_can_be_edited_and_a_delete_needs_no_body() -> None:
    old_id = "01ARZ3NDEKTSV4RRFFQ69G5FAV"  # 2016: far outside the 5 minutes a new id must keep
    request = parse_change(None, edit=False, room="lobby", message_id=old_id)
    assert (request.room, request.id, request.text) == ("lobby", old_id, None)

"""The stream handler's part in edits and deletes (chat/change_stream.py) with a fake store: what
it pushes, what it repairs, when it makes a tombstone, and what a failed repair costs."""

from __future__ import annotations

from dataclasses import replace

from chat.change_stream import MessageWrite, TombstoneArrived, apply_writes
from chat.errors import StoreError
from chat.model import Message
from tests.unit.fakes import FakeMessageChanges

US, EU = "us-east-1", "eu-west-2"
POSTED = Message(
    id="01J0000000000000000000000A",
    room="r",
    author="Ada",
    authorId="g_ADA",
    text="hello",
    sentAt="2026-12-03T18:00:00.000Z",
    acceptedRegion=US,
    transport="websocket",
)
EDITED = replace(POSTED, version=2, text="hullo", editedAt="2026-12-03T18:00:01.000Z", acceptedRegion=EU)
DELETED = replace(POSTED, version=2, text=None, deleted=True, acceptedRegion=US)


def write(sequence: int, old: Message | None, new: Message) -> MessageWrite:
    return MessageWrite(str(sequence), old, new, 1_900_000_000)


def test_a_new_message_and_a_later_version_are_pushed_and_nothing_is_written() -> None:
    changes = FakeMessageChanges([EDITED])
    applied = apply_writes([write(1, None, POSTED), write(2, POSTED, EDITED)], changes=changes, region=US)
    assert [r.message for r in applied.push] == [POSTED, EDITED]
    assert (changes.rewrites, changes.tombstones, applied.failed) == ([], [], [])


def test_a_delete_accepted_here_is_pushed_and_leaves_a_tombstone_one_replicated_here_does_not() -> None:
    changes = FakeMessageChanges([DELETED])
    here = apply_writes([write(1, POSTED, DELETED)], changes=changes, region=US)
    assert [r.message for r in here.push] == [DELETED]
    assert changes.tombstones == [("r", POSTED.id, "g_ADA")]
    elsewhere = FakeMessageChanges([DELETED])
    apply_writes([write(1, POSTED, DELETED)], changes=elsewhere, region=EU)
    assert elsewhere.tombstones == []


def test_an_edit_written_over_a_delete_is_not_pushed_and_the_delete_is_written_back() -> None:
    # Given eu-west-2's edit, written later, replacing us-east-1's delete in us-east-1's table
    changes = FakeMessageChanges([EDITED])
    applied = apply_writes([write(7, DELETED, EDITED)], changes=changes, region=US)
    assert applied.push == []
    assert changes.rewrites == [DELETED]
    assert changes.items[("r", POSTED.id, "g_ADA")].text is None


def test_two_edits_of_one_version_end_on_the_kept_one_with_a_version_above_both() -> None:
    ours = replace(EDITED, text="hallo", editedAt="2026-12-03T18:00:00.500Z", acceptedRegion=US)
    changes = FakeMessageChanges([EDITED])
    applied = apply_writes([write(3, ours, EDITED)], changes=changes, region=US)
    (kept,) = changes.rewrites
    assert (kept.text, kept.version) == ("hullo", 3)
    assert applied.push == []  # the rewrite's own record is pushed, a higher version


def test_a_tombstone_from_elsewhere_deletes_this_regions_copy_and_one_of_ours_does_nothing() -> None:
    changes = FakeMessageChanges([EDITED])
    arrived = TombstoneArrived("5", "r", POSTED.id, "g_ADA", US)
    apply_writes([arrived], changes=changes, region=US)
    assert changes.items[("r", POSTED.id, "g_ADA")] == EDITED  # ours: the delete was made here
    applied = apply_writes([arrived], changes=changes, region=EU)
    assert applied.deleted_on_arrival == 1
    assert changes.items[("r", POSTED.id, "g_ADA")].deleted
    nowhere = apply_writes(
        [TombstoneArrived("6", "r", "01J0000000000000000000000B", "g_ADA", US)], changes=changes, region=EU
    )
    assert (nowhere.failed, nowhere.deleted_on_arrival) == ([], 0)  # no copy here yet


def test_a_repair_that_cannot_be_written_fails_its_record_and_the_rest_are_still_pushed() -> None:
    changes = FakeMessageChanges([EDITED])
    changes.fail = StoreError("PutItem", "ProvisionedThroughputExceededException")
    other = replace(POSTED, id="01J0000000000000000000000C")
    applied = apply_writes([write(1, DELETED, EDITED), write(2, None, other)], changes=changes, region=US)
    assert applied.failed == ["1"]  # the stream retries it
    assert [r.message for r in applied.push] == [other]
    assert applied.errors[0][0] == POSTED.id

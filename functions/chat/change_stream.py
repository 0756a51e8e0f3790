"""The stream handler's part in edits and deletes (the rules are chat/edits.py's): which writes
of a message are pushed, the conflict repairs, a delete's tombstone, and what a tombstone's
arrival does. Every region's stream handler runs it on every write its table took, its own and
replicated ones alike, before the fan-out pushes what it keeps.

Each repair is one conditional write, made only in the conflict case; a record whose repair
could not be written fails, and the stream retries it (with the records after it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from chat import edits
from chat.errors import NotFound, StoreError
from chat.fanout import StreamRecord
from chat.model import Message
from chat.ports import MessageChanges


@dataclass(frozen=True)
class MessageWrite:
    """A write of a message item, as a region's stream shows it."""

    sequence_number: str
    old: Message | None  # None: the item's first copy in this region
    new: Message
    expires_at: int


@dataclass(frozen=True)
class TombstoneArrived:
    sequence_number: str
    room: str
    id: str
    author_id: str
    accepted_region: str  # the region whose stream made it


@dataclass
class Applied:
    push: list[StreamRecord] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # sequence numbers to report to Lambda
    rewritten: int = 0  # conflicts repaired
    tombstones: int = 0
    deleted_on_arrival: int = 0  # copies deleted because their tombstone arrived
    errors: list[tuple[str, str]] = field(default_factory=list)  # (message id, error)


def apply_writes(
    records: Sequence[MessageWrite | TombstoneArrived], *, changes: MessageChanges, region: str
) -> Applied:
    applied = Applied()
    for record in records:
        try:
            if isinstance(record, TombstoneArrived):
                _tombstone_arrived(record, changes, region, applied)
            else:
                _message_written(record, changes, region, applied)
        except StoreError as error:
            applied.failed.append(record.sequence_number)
            applied.errors.append(
                (record.id if isinstance(record, TombstoneArrived) else record.new.id, str(error))
            )
    return applied


def _message_written(record: MessageWrite, changes: MessageChanges, region: str, applied: Applied) -> None:
    new = edits.change_of(record.new)
    old = edits.change_of(record.old) if record.old is not None else None
    step = edits.on_write(old, new, accepted_here=record.new.acceptedRegion == region)
    if step.push:
        applied.push.append(StreamRecord(record.sequence_number, record.new))
    if step.rewrite is not None:
        # The state that must win, on the message it came with: the deleted one's own, or the
        # edit last writer wins kept.
        base = record.old if record.old is not None and step.rewrite == old else record.new
        winner = edits.with_state(base, step.rewrite)
        if changes.rewrite(winner, expires_at=record.expires_at, over=new):
            applied.rewritten += 1
    if step.tombstone:
        changes.record_delete(record.new, expires_at=record.expires_at)
        applied.tombstones += 1


def _tombstone_arrived(
    record: TombstoneArrived, changes: MessageChanges, region: str, applied: Applied
) -> None:
    """A delete made elsewhere: this region deletes its own copy by its own write (nothing
    changes when the deleted state got here first; nothing to do when no copy is here yet: the
    copy that comes will be a deleted one, or meet a rewrite)."""
    if record.accepted_region == region:
        return  # made here, after this region's own delete
    try:
        _, changed = changes.delete(record.room, record.id, record.author_id, region=region)
    except NotFound:
        return
    applied.deleted_on_arrival += int(changed)

"""Editing and deleting one's own message, and why every region ends in the same state.

A message's changeable part is its `Change`: version, text, editedAt, deleted. Changes are
ordered by `rank`: a deleted state outranks every undeleted one, then the higher version, then
the later `editedAt`, then the greater text (code point order, which is also DynamoDB's string
order and the one the chat page uses). The order is total, so "the greatest state wins" picks
one state wherever it is computed.

Global tables resolve concurrent writes by last writer wins on the whole item, with a timestamp
we do not control, so the table alone may keep a lower state (an edit accepted in one region
after a delete in the other). Three rules make the greatest state the one every region keeps:

1. In the region that accepts a change, the write is conditional: an edit or delete of a deleted
   message is refused (`message_deleted`, or an idempotent 200 for a delete), and the new version
   is the stored one plus one.
2. Every region's stream shows each write with the image it replaced (`on_write`). When
   replication replaced a state in a way the order does not take (two edits of one version; an
   edit over a delete), the stream handler writes the state that must win, conditionally, only
   in that conflict case: between two edits, the one last writer wins kept, again, with a
   version above both (so clients that keep the highest version take it too); over a delete,
   the deleted state.
3. The stream handler of the region that accepted a delete records it in a tombstone: an item
   of its own that only deletes write, so no edit can ever replace it. Every other region's
   stream handler, seeing the tombstone arrive, deletes its own copy of the message (the
   delete's own conditional write; it changes nothing when the deleted state got there first).
   So each region ends deleted by its own write, whatever the timestamps last writer wins
   compares: a deleted message never comes back, and its text is gone from every region's
   storage once the streams have run.

Clients apply the same order: they keep the greatest state they have seen of each
`(id, authorId)` (`supersedes`), so they show what the tables converge to.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from chat.errors import InvalidInput, MessageDeleted
from chat.model import Author, Change, Message, iso_time
from chat.ports import MessageChanges, RateLimiter
from chat.service import admit_message
from chat.settings import Settings
from chat.ulid import is_ulid
from chat.validation import string_field, validate_room, validate_text


def change_of(message: Message) -> Change:
    return Change(message.version, message.text, message.editedAt, message.deleted)


def with_state(message: Message, change: Change) -> Message:
    """The message in the state `change`, everything else as it was."""
    return replace(
        message, version=change.version, text=change.text, editedAt=change.editedAt, deleted=change.deleted
    )


def rank(change: Change) -> tuple[bool, int, str, str]:
    """The total order of a message's states: deleted first, then version, editedAt, text."""
    return (change.deleted, change.version, change.editedAt or "", change.text or "")


def supersedes(new: Change, old: Change) -> bool:
    """Whether a client (or a region) holding `old` should take `new`."""
    return rank(new) > rank(old)


def regressed(old: Change, new: Change) -> bool:
    """A write replaced a greater state with a lower one: replication's last writer won over the
    state that must win. The stream handler writes `old` back."""
    return rank(old) > rank(new)


@dataclass(frozen=True)
class StreamStep:
    """What a region's stream handler does with one write of a message it saw (`old` -> `new`)."""

    push: bool  # a change the room's connections have not seen: push `new`
    # A conflict: write this state, while the item holds a state it outranks.
    rewrite: Change | None = None
    tombstone: bool = False  # this region's own delete: record it where no edit ever writes


def on_write(old: Change | None, new: Change, *, accepted_here: bool) -> StreamStep:
    """The rule every region's stream handler applies to each write of a message item.

    - A first copy, or a change to a higher version (an edit, a delete): pushed. A delete this
      region accepted is also recorded in a tombstone.
    - A deleted state replaced by anything it outranks (an edit accepted elsewhere before the
      delete arrived there, and written later): the deleted state is written back.
    - An undeleted state replaced by another of the same or a lower version (two edits accepted
      in two regions before either replicated; last writer wins kept `new`): `new` is written
      again with a version above both, so that every client, keeping the highest version, takes
      the state the tables keep.
    - The same state written again (replication settling equal writes): nothing.
    """
    if old is None:
        return StreamStep(push=True, tombstone=new.deleted and accepted_here)
    if old.deleted:
        if regressed(old, new):
            return StreamStep(push=False, rewrite=old)
        return StreamStep(push=supersedes(new, old))
    if new.deleted:
        return StreamStep(push=True, tombstone=accepted_here)
    if new.version > old.version:
        return StreamStep(push=True)
    if new == old:
        return StreamStep(push=False)
    return StreamStep(push=False, rewrite=replace(new, version=max(old.version, new.version) + 1))


def edited(current: Change, text: str, *, now: str) -> Change | None:
    """The state after an edit of `current` to `text` at `now`; None when the text is already
    `text` (nothing changes). MessageDeleted for a deleted message."""
    if current.deleted:
        raise MessageDeleted()
    if current.text == text:
        return None
    return Change(version=current.version + 1, text=text, editedAt=now, deleted=False)


def deleted(current: Change) -> Change | None:
    """The state after a delete of `current`; None when it is deleted already (idempotent). A
    deleted message has no text and no edit time: every region's deleted state of one version is
    the same."""
    if current.deleted:
        return None
    return Change(version=current.version + 1, text=None, editedAt=None, deleted=True)


@dataclass(frozen=True)
class ChangeRequest:
    """An edit (`text` set) or a delete (`text` None), validated."""

    room: str
    id: str
    text: str | None


def parse_change(
    payload: Any, *, edit: bool, room: str | None = None, message_id: str | None = None
) -> ChangeRequest:
    """Validate an edit or delete. HTTP gives the room and id in the path (a delete needs no
    body), the WebSocket in the frame. Text is checked exactly as a new message's; the id needs
    no recent time: any of one's messages can be changed."""
    if not isinstance(payload, dict):
        if edit or room is None or message_id is None:
            raise InvalidInput("invalid_message", "the message must be a JSON object")
        payload = {}
    message_id = string_field(payload, "id") if message_id is None else message_id
    text = validate_text(string_field(payload, "text")) if edit else None
    room = validate_room(string_field(payload, "room") if room is None else room)
    if not is_ulid(message_id):
        raise InvalidInput("invalid_id", "id must be a ULID: 26 upper-case Crockford base32 characters")
    return ChangeRequest(room=room, id=message_id, text=text)


def change_message(
    payload: Any,
    *,
    edit: bool,
    author: Author,
    changes: MessageChanges,
    limiter: RateLimiter,
    settings: Settings,
    now_ms: int,
    room: str | None = None,
    message_id: str | None = None,
) -> tuple[Message, bool]:
    """Edit (`edit`) or delete the author's own message of that id, admitted under the author's
    message rate: (the stored message after it, True if this call changed it). The message is
    looked up by (room, id, the author's id), so nobody can change another's message."""
    request = parse_change(payload, edit=edit, room=room, message_id=message_id)
    admit_message(author, request.room, limiter=limiter, settings=settings, now_ms=now_ms)
    if request.text is None:
        return changes.delete(request.room, request.id, author.user_id, region=settings.region)
    return changes.edit(
        request.room,
        request.id,
        author.user_id,
        text=request.text,
        edited_at=iso_time(now_ms),
        region=settings.region,
    )

"""The stream handler's part in presence and typing (the rules are chat/presence.py's): each
region's stream turns a membership's INSERT or REMOVE, and a typing item's write, into frames for
the room's connections in this region. Every region runs it on every copy, its own writes and
replicated ones alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from chat.errors import StoreError
from chat.fanout import RoomFrame
from chat.model import Author
from chat.ports import PresenceStore, RateLimiter
from chat.presence import (
    COUNT_FRAME_INTERVAL_MS,
    LARGE_ROOM,
    Member,
    count_frame,
    live_regions,
    membership_frame,
    roster,
    typing_frame,
)


@dataclass(frozen=True)
class MembershipChanged:
    sequence_number: str
    member: Member
    entered: bool  # INSERT; else REMOVE


@dataclass(frozen=True)
class Typed:
    sequence_number: str
    room: str
    author: Author
    region: str
    connection_id: str


@dataclass
class PresenceFrames:
    frames: list[RoomFrame] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # sequence numbers to report to Lambda
    errors: list[tuple[str, str]] = field(default_factory=list)  # (room, error)


def count_frame_admitted(room: str, *, limiter: RateLimiter, now_ms: int) -> bool:
    """Whether a large room may have a `count` frame now: at most one per
    COUNT_FRAME_INTERVAL_MS in this region, whoever sends it (the stream handler, the keeper)."""
    wait_ms = limiter.admit(
        f"presence-count#{room}", now_ms=now_ms, interval_ms=COUNT_FRAME_INTERVAL_MS, tolerance_ms=0
    )
    return wait_ms is None


def frames_for(
    changes: Sequence[MembershipChanged | Typed],
    *,
    presence: PresenceStore,
    limiter: RateLimiter,
    region: str,
    now_ms: int,
) -> PresenceFrames:
    """The frames the batch's changes push here. A membership change reads the room's
    memberships (bounded: at most 4 x LARGE_ROOM items before the room counts as large); a large
    room gets a `count` frame at most once per COUNT_FRAME_INTERVAL_MS in this region."""
    out = PresenceFrames()
    live: set[str] | None = None
    for change in changes:
        if isinstance(change, Typed):
            skip = change.connection_id if change.region == region else None
            out.frames.append(
                RoomFrame(change.sequence_number, change.room, typing_frame(change.author), skip)
            )
            continue
        room = change.member.room
        try:
            if live is None:
                live = live_regions(presence.beats(), own=region, now_ms=now_ms)
            members, more = presence.members(room, limit=4 * LARGE_ROOM)
            if not more and roster(members, live).count <= LARGE_ROOM:
                frame = membership_frame(change.member, entered=change.entered, members=members, live=live)
            elif count_frame_admitted(room, limiter=limiter, now_ms=now_ms):
                frame = count_frame(roster(presence.members(room)[0], live).count)
            else:
                frame = None
        except StoreError as error:
            out.failed.append(change.sequence_number)
            out.errors.append((room, str(error)))
            continue
        if frame is not None:
            # The connection that entered learns the room from GET presence, not its own `enter`.
            own = change.member.region == region and change.entered and change.member.connection_id
            out.frames.append(RoomFrame(change.sequence_number, room, frame, skip=own or None))
    return out

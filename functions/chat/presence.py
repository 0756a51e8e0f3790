"""Presence and typing: who is in a room, in every region, and who is typing (issue 27).

A room's presence is the union of every region's connections, once per user. Each region keeps,
in the messages global table, one membership item per (room, user, region) that holds at least
one live connection there: written when the user's first connection to the room in that region
opens, deleted when the last one closes (the user's connection slots, chat/connection_slots.py,
tell first and last atomically). So a second tab, and the reconnect that API Gateway's 2-hour
limit forces when the page makes it before breaking the old socket, write nothing global.
Replication copies the memberships everywhere; each region's stream turns a membership's INSERT
and REMOVE into `enter` and `leave` frames, when it changes whether the user is in the room at
all.

A region that fails cannot delete its memberships. Each region's keeper (chat/presence_keeper.py)
writes a beat to the global table every BEAT_SECONDS; a region whose beat is older than STALE_MS
is dead to the others, and its memberships are not counted (no ghosts, within a minute). A region
coming back first checks its own connections and deletes the memberships of those that are gone,
and only then beats again.

Typing is one item per user (naming the room), written at most once per TYPING_INTERVAL_MS by a conditional
write (extra ones are dropped quietly): its INSERT or MODIFY, in every region's stream, is pushed
to the room's other connections. Nothing of it enters the history.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chat.fanout_pages import frame_bytes
from chat.model import Author

KIND_PRESENCE, KIND_BEAT, KIND_TYPING = "presence", "beat", "typing"  # items' `kind` attribute
BEAT_SECONDS = 15  # how often a region's keeper beats
STALE_MS = 40_000  # a region whose newest beat is older is dead to the others
MEMBERS_SHOWN = 100  # GET presence lists at most this many members; `count` is all of them
# A room with more members than this gets `count` frames instead of `enter`/`leave`, at most one
# per COUNT_FRAME_INTERVAL_MS per region.
LARGE_ROOM = 100
COUNT_FRAME_INTERVAL_MS = 5_000
TYPING_INTERVAL_MS = 2_000  # at most one typing event per user crosses the region, whatever the room
TYPING_TTL_SECONDS = 60  # a typing item's life (TTL): it is only ever read from the stream


@dataclass(frozen=True)
class Member:
    """One user's presence in a room through one region's connections."""

    room: str
    user_id: str
    name: str
    region: str
    seq: int = 0
    connection_id: str = ""  # the connection whose opening wrote it (its `enter` is not pushed to it)
    since_ms: int = 0  # when that connection opened, by its region's clock

    def older_than(self, other: Member) -> bool:
        """Of a user's memberships in two regions, the one whose INSERT pushes `enter`."""
        return (self.since_ms, self.region) < (other.since_ms, other.region)


@dataclass(frozen=True)
class Beat:
    region: str
    beat_at_ms: int
    live: frozenset[str] = frozenset()  # the regions this one counted live when it beat
    reconciled_at_ms: int = 0  # when its keeper last checked its memberships against its connections


@dataclass(frozen=True)
class Roster:
    """A room's members as one region sees them: user id -> name, live regions only."""

    names: dict[str, str]

    @property
    def count(self) -> int:
        return len(self.names)

    def shown(self) -> list[dict[str, str]]:
        """At most MEMBERS_SHOWN members, by name compared case-insensitively, then id (the same
        in every region)."""
        ordered = sorted(self.names.items(), key=lambda kv: (kv[1].casefold(), kv[0]))
        return [{"id": user_id, "name": name} for user_id, name in ordered[:MEMBERS_SHOWN]]


def live_regions(beats: Iterable[Beat], *, own: str, now_ms: int) -> set[str]:
    """The regions whose memberships count here: this one, and every one that beat recently."""
    return {own} | {b.region for b in beats if now_ms - b.beat_at_ms <= STALE_MS}


def roster(members: Iterable[Member], live: set[str]) -> Roster:
    names: dict[str, str] = {}
    for member in sorted(members, key=lambda m: m.seq):  # the newest name wins
        if member.region in live:
            names[member.user_id] = member.name
    return Roster(names)


def view(members: Iterable[Member], live: set[str], *, region: str) -> dict[str, object]:
    """`GET /rooms/{room}/presence`'s body."""
    current = roster(members, live)
    return {"count": current.count, "members": current.shown(), "region": region}


def presence_frame(event: str, user_id: str, name: str, count: int) -> bytes:
    return frame_bytes(
        {"type": "presence", "event": event, "user": {"id": user_id, "name": name}, "count": count}
    )


def count_frame(count: int) -> bytes:
    return frame_bytes({"type": "presence", "event": "count", "count": count})


def typing_frame(author: Author) -> bytes:
    return frame_bytes({"type": "typing", "user": {"id": author.user_id, "name": author.name}})


def membership_frame(
    changed: Member, *, entered: bool, members: Sequence[Member], live: set[str]
) -> bytes | None:
    """The frame a membership's INSERT (`entered`) or REMOVE pushes to the room, given the room's
    memberships as this region reads them now and the live regions: `enter` when it made the user
    present, `leave` when it made them absent, nothing otherwise (a second region's tab, a
    membership of a dead region). The caller sends a large room count frames instead.

    The read may be later than the change: a user's first tabs in two regions, opened together,
    can both be in it when either INSERT is handled. So an INSERT pushes `enter` only when no
    older membership of the user is live: of the two, the older one's INSERT pushes it, whichever
    is handled first (a user's `enter` is never lost; it can repeat when the newer INSERT is
    handled before the older one has replicated here)."""
    if changed.region not in live:
        return None  # a dead region's: its users were already taken out, or will come back with it
    current = roster(members, live)
    if entered:
        if any(
            m.user_id == changed.user_id and m.region != changed.region and m.older_than(changed)
            for m in members
            if m.region in live
        ):
            return None  # present through an older membership: its INSERT says so
        return presence_frame("enter", changed.user_id, changed.name, current.count)
    if changed.user_id in current.names:
        return None  # still present through another region
    return presence_frame("leave", changed.user_id, changed.name, current.count)


def changed_users(members: Iterable[Member], before: set[str], after: set[str]) -> dict[str, tuple[str, str]]:
    """When the live regions go from `before` to `after`: user id -> (event, name) for each user
    whose presence that changes ("enter" or "leave")."""
    listed = list(members)
    was, now = roster(listed, before), roster(listed, after)
    changes = {u: ("leave", name) for u, name in was.names.items() if u not in now.names}
    changes |= {u: ("enter", name) for u, name in now.names.items() if u not in was.names}
    return changes

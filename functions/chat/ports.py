"""What the domain needs from the outside world. Adapters (store.py, connection_slots.py,
rate_limiter.py, keyring.py, revocations.py, page_queue.py, push.py, oidc.py) implement these and
raise the domain's errors (errors.py); unit tests hand in fakes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Protocol

from chat.model import Author, Change, Message

if TYPE_CHECKING:
    from chat.fanout_pages import Page
    from chat.presence import Beat, Member
    from chat.sessions import SigningKeys


class MessageStore(Protocol):
    def put_message(self, message: Message, *, expires_at: int) -> tuple[Message, bool]:
        """Insert unless this author's message of that id is stored; return the stored message
        and whether it is new. Another author's message of the same id is another message."""
        ...

    def list_messages(self, room: str, *, after: str | None, limit: int) -> tuple[list[Message], str | None]:
        """A page of about `limit` of a room's messages, oldest first (by id, then author), and
        the id to continue after (or None). A page never splits the messages of one id."""
        ...

    def probe(self) -> None:
        """Raise StoreError unless this region's replica accepts reads and writes."""
        ...


class MessageChanges(Protocol):
    """Edits and deletes of one author's message, each one conditional write (chat/edits.py)."""

    def edit(
        self, room: str, message_id: str, author_id: str, *, text: str, edited_at: str, region: str
    ) -> tuple[Message, bool]:
        """(the edited message, True), or (the stored one, False) when it holds `text` already;
        NotFound, or MessageDeleted for a deleted message."""
        ...

    def delete(self, room: str, message_id: str, author_id: str, *, region: str) -> tuple[Message, bool]:
        """(the deleted message, True), or (the stored one, False) when deleted already; NotFound."""
        ...

    def rewrite(self, message: Message, *, expires_at: int, over: Change) -> bool:
        """Write `message` over a state it outranks, `over` or a later one (the stream's repair
        of a conflict); False when the item is gone or holds a state at least as great."""
        ...

    def record_delete(self, message: Message, *, expires_at: int) -> None:
        """Make the deleted message's tombstone (once; no edit ever writes one)."""
        ...


@dataclass(frozen=True)
class SlotChange:
    """What a claim or a release left: whether the user holds (after a claim: held before) another
    live connection to the room in this region, and the user's slot sequence number, which
    orders the room memberships the claims and releases write (chat/presence.py)."""

    others_in_room: bool
    seq: int


class ConnectionRepair(Protocol):
    """What the presence keeper repairs memberships with (chat/presence_keeper.py)."""

    def user_connections(self, user_id: str) -> tuple[list[tuple[str, str | None, int]], int | None]:
        """The user's unexpired connections here, (connection id, room, expiresAt), and the
        slot's sequence number (None: the user has no slot here)."""
        ...

    def delete_connection(self, connection_id: str, *, connected_before: str | None = None) -> None: ...

    def leave_room_if_empty(self, room: str, user_id: str, *, seq: int) -> None:
        """Delete the user's membership of the room here unless written with `seq` or later."""
        ...


class ConnectionStore(ConnectionRepair, Protocol):
    def put_connection(
        self, connection_id: str, *, room: str, user_id: str, connected_at: str, expires_at: int
    ) -> None: ...

    def claim_slot(
        self, user_id: str, connection_id: str, *, room: str, expires_at: int, cap: int, now: int
    ) -> SlotChange | None:
        """Atomically take one of the user's `cap` connection slots in this region for a
        connection to `room` that ends by `expires_at` (s); None when all are held by connections
        that have not expired by `now` (s). Slots past their expiry are freed on the way. Says
        whether the user held another live connection to the room here."""
        ...

    def release_slot(self, user_id: str, connection_id: str, *, room: str | None, expires_at: int) -> None:
        """Give back the slot `claim_slot` took (idempotent); if it was the user's last connection
        to `room` here, the user's membership of the room in this region goes too."""
        ...

    def enter_room(self, member: Member) -> None:
        """Write the user's membership of the room in this region (its first connection there)."""
        ...

    def delete_connection(self, connection_id: str, *, connected_before: str | None = None) -> None:
        """Forget the connection and release its user's slot (and membership, if it was the last).
        With `connected_before` (a time as model.iso_time writes it), only if it connected
        before then: a younger one is kept."""
        ...

    def connections_page(
        self, room: str, *, after: str | None, limit: int
    ) -> tuple[Sequence[str], str | None]:
        """Up to `limit` of a room's connection ids, and the cursor to read on from (None: that
        was the last page). `after` is the cursor a previous page returned."""
        ...

    def probe(self, region: str, now: int) -> None: ...


class PresenceStore(Protocol):
    """Memberships, beats and typing in the global table (chat/presence_store.py)."""

    def members(self, room: str, *, limit: int | None = None) -> tuple[list[Member], bool]: ...

    def region_members(self, region: str) -> list[tuple[str, str]]: ...

    def beat(self, beat: Beat) -> None: ...

    def beats(self) -> list[Beat]: ...

    def typing(
        self, room: str, author: Author, *, connection_id: str, region: str, now_ms: int, interval_ms: int
    ) -> bool: ...


class RateLimiter(Protocol):
    def admit(self, key: str, *, now_ms: int, interval_ms: int, tolerance_ms: int) -> int | None:
        """GCRA: admit one event for `key` (None) or say how many ms until one would be admitted.
        `interval_ms` is the sustained spacing, `tolerance_ms` how far ahead of it a burst may run."""
        ...


class KeySource(Protocol):
    def signing_keys(self) -> SigningKeys:
        """The session keys (raises StoreError when they cannot be read)."""
        ...


class SessionRevocations(Protocol):
    """Signed-out sessions, by session id, replicated to every region (StoreError when unreachable)."""

    def revoke(self, session_id: str, *, user_id: str, now: int, expires_at: int) -> None:
        """Refuse the session from now on in this region, and in every other once replicated;
        the record may go after `expires_at`, when no token of the session is valid anyway."""
        ...

    def is_revoked(self, session_id: str) -> bool: ...


@dataclass(frozen=True)
class Account:
    """An OpenID Connect account, as its provider's verified ID token names it."""

    issuer: str
    subject: str
    name: str | None


class AccountVerifier(Protocol):
    def verify(self, id_token: str, *, now: int, nonce: str | None = None) -> Account:
        """The token's account; raises ChatError (invalid_id_token) unless the provider signed it
        for our audience, it is current and recent, and carries `nonce` when one is given;
        StoreError when the provider's keys are unreachable or its answers malformed."""
        ...


class Delivery(Enum):
    DELIVERED = "delivered"
    GONE = "gone"  # 410: the client left; its connection item must go
    FAILED = "failed"  # anything else, after retries: logged, never blocks the batch
    # Not posted: the invocation's time to start posts ran out before an attempt (or a retry)
    # could start. The fan-out hands the connection back to the page queue.
    OUT_OF_TIME = "out_of_time"


class PageQueue(Protocol):
    def send_pages(self, pages: Sequence[Page]) -> None:
        """Hand pages to the fan-out workers; raises StoreError unless every page was accepted."""
        ...


class Pusher(Protocol):
    def push(self, connection_id: str, data: bytes) -> Delivery:
        """Post one frame (retrying throttling and 5xx); OUT_OF_TIME rather than start an
        attempt once the invocation's time to post is up, if the pusher was given one."""
        ...


class ConnectionCloser(Protocol):
    def is_open(self, connection_id: str) -> bool:
        """Whether API Gateway still holds the connection."""
        ...

    def close_user(self, user_id: str) -> int:
        """Close this region's connections of a user; how many were closed (StoreError when its
        connections cannot be read)."""
        ...

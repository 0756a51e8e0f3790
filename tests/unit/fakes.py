"""In-memory stand-ins for the ports, for unit tests that must not reach a network."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from chat import edits
from chat.errors import NotFound, StoreError
from chat.fanout_pages import Page
from chat.model import Change, Message
from chat.ports import Delivery
from chat.sessions import SigningKeys


class FakeMessageStore:
    """Messages keyed as the table keys them: (room, id, authorId)."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str, str], Message] = {}
        self.writes = 0
        self.fail: Exception | None = None

    def put_message(self, message: Message, *, expires_at: int) -> tuple[Message, bool]:
        if self.fail:
            raise self.fail
        key = (message.room, message.id, message.authorId)
        if key in self.items:
            return self.items[key], False
        self.writes += 1
        self.items[key] = message
        return message, True

    def list_messages(self, room: str, *, after: str | None, limit: int) -> tuple[list[Message], str | None]:
        keys = sorted(k for k in self.items if k[0] == room and (after is None or k[1] > after))
        page = [self.items[k] for k in keys[:limit]]
        page += [self.items[k] for k in keys[limit:] if page and k[1] == page[-1].id]
        return page, (page[-1].id if len(keys) > len(page) else None)

    def probe(self) -> None:
        if self.fail:
            raise self.fail


class FakeConnectionStore:
    def __init__(self, rooms: dict[str, list[str]] | None = None) -> None:
        self.rooms = rooms or {}
        self.deleted: list[str] = []
        self.queries: list[str] = []
        self.unreadable: set[str] = set()
        self.users: dict[str, list[str]] = {}
        self.slots: dict[str, dict[str, int]] = {}  # user -> {connection: expires at}
        self.fail_put: Exception | None = None
        self.connected_at: dict[str, str] = {}
        self.kept_young: list[str] = []  # 410s on connections too young to forget

    def put_connection(
        self, connection_id: str, *, room: str, user_id: str, connected_at: str, expires_at: int
    ) -> None:
        if self.fail_put:
            raise self.fail_put
        self.connected_at[connection_id] = connected_at
        self.rooms.setdefault(room, []).append(connection_id)
        self.users.setdefault(user_id, []).append(connection_id)

    def claim_slot(self, user_id: str, connection_id: str, *, expires_at: int, cap: int, now: int) -> bool:
        held = self.slots.setdefault(user_id, {})
        for expired in [c for c, until in held.items() if until <= now]:
            del held[expired]
        if len(held) >= cap:
            return False
        held[connection_id] = expires_at
        return True

    def release_slot(self, user_id: str, connection_id: str, *, expires_at: int) -> None:
        self.slots.get(user_id, {}).pop(connection_id, None)

    def delete_connection(self, connection_id: str, *, connected_before: str | None = None) -> None:
        connected_at = self.connected_at.get(connection_id)
        if connected_before is not None and connected_at is not None and connected_at >= connected_before:
            self.kept_young.append(connection_id)
            return
        self.deleted.append(connection_id)
        for held in self.slots.values():
            held.pop(connection_id, None)

    def connections_page(
        self, room: str, *, after: str | None, limit: int
    ) -> tuple[Sequence[str], str | None]:
        """Pages in insertion order. As DynamoDB's, the cursor is the page's last position whenever
        the page reached the limit, even when nothing follows."""
        self.queries.append(room)
        if room in self.unreadable:
            raise StoreError("Query", "ThrottlingException")
        ids = self.rooms.get(room, [])
        start = 0 if after is None else ids.index(after) + 1
        page = ids[start : start + limit]
        return page, (page[-1] if page and len(page) == limit else None)

    def probe(self, region: str, now: int) -> None:
        pass


class FakePusher:
    def __init__(self, gone: set[str] | None = None, failing: set[str] | None = None) -> None:
        self.gone = gone or set()
        self.failing = failing or set()
        self.posts: list[tuple[str, bytes]] = []

    def push(self, connection_id: str, data: bytes) -> Delivery:
        self.posts.append((connection_id, data))
        if connection_id in self.gone:
            return Delivery.GONE
        if connection_id in self.failing:
            return Delivery.FAILED
        return Delivery.DELIVERED


class FakePageQueue:
    """Keeps the pages sent, in order; refuses them all while `fail` is set."""

    def __init__(self) -> None:
        self.sent: list[Page] = []
        self.fail = False

    def send_pages(self, pages: Sequence[Page]) -> None:
        if self.fail:
            raise StoreError("SendMessageBatch", "AWS.SimpleQueueService.NonExistentQueue")
        self.sent.extend(pages)


class FakeRateLimiter:
    """Admits everyone except the keys told to wait; records every key it was asked about."""

    def __init__(self, waits: dict[str, int] | None = None) -> None:
        self.waits = waits or {}
        self.asked: list[str] = []

    def admit(self, key: str, *, now_ms: int, interval_ms: int, tolerance_ms: int) -> int | None:
        self.asked.append(key)
        return self.waits.get(key)


class FakeKeySource:
    def __init__(self, keys: SigningKeys) -> None:
        self.keys = keys

    def signing_keys(self) -> SigningKeys:
        return self.keys


class FakeSessionRevocations:
    """Signed-out sessions by id, with each record's expiry (one region, no replication)."""

    def __init__(self) -> None:
        self.revoked: dict[str, int] = {}
        self.fail: Exception | None = None

    def revoke(self, session_id: str, *, user_id: str, now: int, expires_at: int) -> None:
        if self.fail:
            raise self.fail
        self.revoked[session_id] = expires_at

    def is_revoked(self, session_id: str) -> bool:
        if self.fail:
            raise self.fail
        return session_id in self.revoked


class FakeMessageChanges:
    """The MessageChanges port over a dict, applying chat/edits.py's rules as the adapter's
    conditions do; `fail` makes every write raise."""

    def __init__(self, messages: Sequence[Message] = ()) -> None:
        self.items: dict[tuple[str, str, str], Message] = {(m.room, m.id, m.authorId): m for m in messages}
        self.tombstones: list[tuple[str, str, str]] = []
        self.rewrites: list[Message] = []
        self.fail: StoreError | None = None

    def _item(self, room: str, message_id: str, author_id: str) -> Message:
        if self.fail:
            raise self.fail
        if (room, message_id, author_id) not in self.items:
            raise NotFound()
        return self.items[(room, message_id, author_id)]

    def _write(self, message: Message) -> Message:
        self.items[(message.room, message.id, message.authorId)] = message
        return message

    def edit(
        self, room: str, message_id: str, author_id: str, *, text: str, edited_at: str, region: str
    ) -> tuple[Message, bool]:
        stored = self._item(room, message_id, author_id)
        after = edits.edited(edits.change_of(stored), text, now=edited_at)
        if after is None:
            return stored, False
        return self._write(replace(edits.with_state(stored, after), acceptedRegion=region)), True

    def delete(self, room: str, message_id: str, author_id: str, *, region: str) -> tuple[Message, bool]:
        stored = self._item(room, message_id, author_id)
        after = edits.deleted(edits.change_of(stored))
        if after is None:
            return stored, False
        return self._write(replace(edits.with_state(stored, after), acceptedRegion=region)), True

    def rewrite(self, message: Message, *, expires_at: int, over: Change) -> bool:
        stored = self._item(message.room, message.id, message.authorId)
        if not edits.regressed(edits.change_of(message), edits.change_of(stored)):
            return False
        self.rewrites.append(self._write(message))
        return True

    def record_delete(self, message: Message, *, expires_at: int) -> None:
        if self.fail:
            raise self.fail
        self.tombstones.append((message.room, message.id, message.authorId))

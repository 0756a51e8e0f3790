"""In-memory stand-ins for the ports, for unit tests that must not reach a network."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from chat import edits
from chat.errors import NotFound, StoreError
from chat.fanout_pages import Page
from chat.model import Author, Change, Message
from chat.ports import Delivery, SlotChange
from chat.presence import Beat, Member
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
    """Connections, their users' slots and, through `presence`, the memberships their first and
    last connection to a room write, with the adapter's rules (chat/store.py)."""

    def __init__(
        self,
        rooms: dict[str, list[str]] | None = None,
        *,
        presence: FakePresence | None = None,
        region: str = "r1",
    ) -> None:
        self.rooms = rooms or {}
        self.deleted: list[str] = []
        self.queries: list[str] = []
        self.unreadable: set[str] = set()
        self.users: dict[str, list[str]] = {}
        # user -> {connection: (expires at, room)}
        self.slots: dict[str, dict[str, tuple[int, str | None]]] = {}
        self.seq: dict[str, int] = {}
        self.fail_put: Exception | None = None
        self.connected_at: dict[str, str] = {}
        self.kept_young: list[str] = []  # 410s on connections too young to forget
        self.presence = presence
        self.region = region
        self.now = 0  # what the slots' expiry is judged against on a release

    def put_connection(
        self, connection_id: str, *, room: str, user_id: str, connected_at: str, expires_at: int
    ) -> None:
        if self.fail_put:
            raise self.fail_put
        self.connected_at[connection_id] = connected_at
        self.rooms.setdefault(room, []).append(connection_id)
        self.users.setdefault(user_id, []).append(connection_id)

    def _next_seq(self, user_id: str) -> int:
        self.seq[user_id] = self.seq.get(user_id, 0) + 1
        return self.seq[user_id]

    def _others(self, user_id: str, room: str, now: int) -> bool:
        return any(r == room and until > now for until, r in self.slots.get(user_id, {}).values())

    def claim_slot(
        self, user_id: str, connection_id: str, *, room: str, expires_at: int, cap: int, now: int
    ) -> SlotChange | None:
        held = self.slots.setdefault(user_id, {})
        for expired in [c for c, (until, _) in held.items() if until <= now]:
            del held[expired]
        if len(held) >= cap:
            return None
        others = self._others(user_id, room, now)
        held[connection_id] = (expires_at, room)
        return SlotChange(others_in_room=others, seq=self._next_seq(user_id))

    def release_slot(self, user_id: str, connection_id: str, *, room: str | None, expires_at: int) -> None:
        self.slots.get(user_id, {}).pop(connection_id, None)
        seq = self._next_seq(user_id)
        if room is not None and self.presence is not None and not self._others(user_id, room, self.now):
            self.presence.leave(room, user_id, self.region, seq=seq)

    def enter_room(self, member: Member) -> None:
        if self.presence is not None:
            self.presence.enter(member)

    def user_connections(self, user_id: str) -> tuple[list[tuple[str, str | None, int]], int | None]:
        held = self.slots.get(user_id, {})
        live = [(c, room, until) for c, (until, room) in held.items() if until > self.now]
        return live, self.seq.get(user_id)

    def leave_room_if_empty(self, room: str, user_id: str, *, seq: int) -> None:
        if self.presence is not None:
            self.presence.leave(room, user_id, self.region, seq=seq)

    def delete_connection(self, connection_id: str, *, connected_before: str | None = None) -> None:
        connected_at = self.connected_at.get(connection_id)
        if connected_before is not None and connected_at is not None and connected_at >= connected_before:
            self.kept_young.append(connection_id)
            return
        self.deleted.append(connection_id)
        for ids in self.rooms.values():
            if connection_id in ids:
                ids.remove(connection_id)
        for user_id, held in self.slots.items():
            if connection_id in held:
                self.release_slot(user_id, connection_id, room=held[connection_id][1], expires_at=0)
                return

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


class FakePresence:
    """The global table's memberships, beats and typing items, as replicated to one region: the
    conditions on `seq` and on typing's interval as the adapter writes them."""

    def __init__(self) -> None:
        self.memberships: dict[tuple[str, str, str], Member] = {}  # (room, user, region)
        self.beat_items: dict[str, Beat] = {}
        self.typed: dict[str, int] = {}  # user -> at (ms): one item per user, whatever the room
        self.typing_writes: list[tuple[str, str, str]] = []  # (room, user, connection)
        self.fail: Exception | None = None

    def enter(self, member: Member) -> None:
        if self.fail:
            raise self.fail
        key = (member.room, member.user_id, member.region)
        if key not in self.memberships or self.memberships[key].seq < member.seq:
            self.memberships[key] = member

    def leave(self, room: str, user_id: str, region: str, *, seq: int) -> None:
        key = (room, user_id, region)
        if key in self.memberships and self.memberships[key].seq < seq:
            del self.memberships[key]

    def members(self, room: str, *, limit: int | None = None) -> tuple[list[Member], bool]:
        if self.fail:
            raise self.fail
        found = [m for (r, _, _), m in sorted(self.memberships.items()) if r == room]
        if limit is not None and len(found) > limit:
            return found[:limit], True
        return found, False

    def region_members(self, region: str) -> list[tuple[str, str]]:
        return [(room, user) for (room, user, r) in sorted(self.memberships) if r == region]

    def beat(self, beat: Beat) -> None:
        if self.fail:
            raise self.fail
        self.beat_items[beat.region] = beat

    def beats(self) -> list[Beat]:
        if self.fail:
            raise self.fail
        return list(self.beat_items.values())

    def typing(
        self, room: str, author: Author, *, connection_id: str, region: str, now_ms: int, interval_ms: int
    ) -> bool:
        if self.fail:
            raise self.fail
        last = self.typed.get(author.user_id)
        if last is not None and last > now_ms - interval_ms:
            return False
        self.typed[author.user_id] = now_ms
        self.typing_writes.append((room, author.user_id, connection_id))
        return True


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

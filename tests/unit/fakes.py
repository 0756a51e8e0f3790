"""In-memory stand-ins for the ports, for unit tests that must not reach a network."""

from __future__ import annotations

from collections.abc import Sequence

from chat.model import Message
from chat.ports import Delivery, StoreError


class FakeMessageStore:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], Message] = {}
        self.writes = 0
        self.fail: Exception | None = None

    def put_message(self, message: Message, *, expires_at: int) -> tuple[Message, bool]:
        if self.fail:
            raise self.fail
        key = (message.room, message.id)
        if key in self.items:
            return self.items[key], False
        self.writes += 1
        self.items[key] = message
        return message, True

    def list_messages(self, room: str, *, after: str | None, limit: int) -> tuple[list[Message], str | None]:
        ids = sorted(i for r, i in self.items if r == room and (after is None or i > after))
        page = [self.items[(room, i)] for i in ids[:limit]]
        return page, (page[-1].id if len(ids) > limit else None)

    def probe(self) -> None:
        if self.fail:
            raise self.fail


class FakeConnectionStore:
    def __init__(self, rooms: dict[str, list[str]] | None = None) -> None:
        self.rooms = rooms or {}
        self.deleted: list[str] = []
        self.queries: list[str] = []
        self.unreadable: set[str] = set()

    def put_connection(
        self, connection_id: str, *, room: str, author: str, connected_at: str, expires_at: int
    ) -> None:
        self.rooms.setdefault(room, []).append(connection_id)

    def delete_connection(self, connection_id: str) -> None:
        self.deleted.append(connection_id)

    def connections_in_room(self, room: str) -> Sequence[str]:
        self.queries.append(room)
        if room in self.unreadable:
            raise StoreError("Query", "ThrottlingException")
        return list(self.rooms.get(room, []))

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

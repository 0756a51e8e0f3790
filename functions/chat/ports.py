"""What the domain needs from the outside world, and the errors it hears from it. Adapters live
in store.py and push.py; unit tests hand in fakes."""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Protocol

from chat.model import Message


class StoreError(Exception):
    """A store could not do what we asked (throttled, unavailable, misconfigured). Adapters raise
    it with their own error code, so the domain never needs to know an AWS exception."""

    def __init__(self, operation: str, code: str) -> None:
        super().__init__(f"{operation} failed: {code}")
        self.code = code


class MessageStore(Protocol):
    def put_message(self, message: Message, *, expires_at: int) -> tuple[Message, bool]:
        """Insert unless the id is stored; return the stored message and whether it is new."""
        ...

    def list_messages(self, room: str, *, after: str | None, limit: int) -> tuple[list[Message], str | None]:
        """A page of a room's messages, oldest first, and the id to continue after (or None)."""
        ...

    def probe(self) -> None:
        """Raise StoreError unless this region's replica accepts reads and writes."""
        ...


class ConnectionStore(Protocol):
    def put_connection(
        self, connection_id: str, *, room: str, author: str, connected_at: str, expires_at: int
    ) -> None: ...

    def delete_connection(self, connection_id: str) -> None: ...

    def connections_in_room(self, room: str) -> Sequence[str]: ...

    def probe(self, region: str, now: int) -> None: ...


class Delivery(Enum):
    DELIVERED = "delivered"
    GONE = "gone"  # 410: the client left; its connection item must go
    FAILED = "failed"  # anything else, after retries: logged, never blocks the batch


class Pusher(Protocol):
    def push(self, connection_id: str, data: bytes) -> Delivery: ...

"""The chat service as the WebSocket and HTTP handlers call it: chat/service.py's rules bound to
this container's ports, settings and clock. The composition root (chat/composition.py) builds one
per container; the ports come as factories, so an adapter is made only when a handler first needs
it (a health check never reads the session keys, a message never makes the OpenID verifier)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chat import edits, service
from chat.model import Author, Connection, Message, Transport
from chat.ports import (
    AccountVerifier,
    ConnectionStore,
    KeySource,
    MessageChanges,
    MessageStore,
    PresenceStore,
    RateLimiter,
    SessionRevocations,
)
from chat.sessions import Session
from chat.settings import Settings


@dataclass(frozen=True)
class ChatService:
    settings: Settings
    clock: Callable[[], float]  # seconds since the epoch
    messages: Callable[[], MessageStore]
    changes: Callable[[], MessageChanges]
    connections: Callable[[], ConnectionStore]
    limiter: Callable[[], RateLimiter]
    keys: Callable[[], KeySource]
    revocations: Callable[[], SessionRevocations]
    accounts: Callable[[], AccountVerifier | None]
    presence: Callable[[], PresenceStore]

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def check_health(self) -> tuple[bool, dict[str, Any]]:
        return service.check_health(
            messages=self.messages(),
            connections=self.connections(),
            region=self.settings.region,
            now_ms=self._now_ms(),
        )

    def sign_in(self, payload: Any, *, authorization: str | None, source_ip: str | None) -> dict[str, Any]:
        return service.sign_in(
            payload,
            authorization=authorization,
            keys=self.keys(),
            accounts=self.accounts(),
            revocations=self.revocations(),
            settings=self.settings,
            now=int(self.clock()),
            limiter=self.limiter(),
            source_ip=source_ip,
        )

    def current_session(self, authorization: str | None) -> Session:
        return service.current_session(
            authorization,
            self.keys(),
            revocations=self.revocations(),
            settings=self.settings,
            now=int(self.clock()),
        )

    def authenticate(self, authorization: str | None) -> Author:
        return service.authenticate(
            authorization,
            self.keys(),
            revocations=self.revocations(),
            settings=self.settings,
            now=int(self.clock()),
        )

    def sign_out(self, authorization: str | None) -> Session:
        return service.sign_out(
            authorization,
            self.keys(),
            revocations=self.revocations(),
            settings=self.settings,
            now=int(self.clock()),
        )

    def read_history(self, room: str, *, after: str | None, limit: str | None) -> dict[str, Any]:
        return service.read_history(
            room, after=after, limit=limit, store=self.messages(), region=self.settings.region
        )

    def accept_message(
        self, payload: Any, *, author: Author, transport: Transport, room: str | None = None
    ) -> tuple[Message, bool]:
        return service.accept_message(
            payload,
            room=room,
            author=author,
            transport=transport,
            store=self.messages(),
            limiter=self.limiter(),
            settings=self.settings,
            now_ms=self._now_ms(),
        )

    def change_message(
        self,
        payload: Any,
        *,
        edit: bool,
        author: Author,
        room: str | None = None,
        message_id: str | None = None,
    ) -> tuple[Message, bool]:
        """Edit (`edit`) or delete the author's own message (chat/edits.py)."""
        return edits.change_message(
            payload,
            edit=edit,
            author=author,
            changes=self.changes(),
            limiter=self.limiter(),
            settings=self.settings,
            now_ms=self._now_ms(),
            room=room,
            message_id=message_id,
        )

    def open_connection(
        self, connection_id: str, query: Mapping[str, str] | None, *, author: Author
    ) -> Connection:
        return service.open_connection(
            connection_id,
            query,
            author=author,
            store=self.connections(),
            settings=self.settings,
            now_ms=self._now_ms(),
        )

    def read_presence(self, room: str) -> dict[str, Any]:
        return service.read_presence(
            room, presence=self.presence(), region=self.settings.region, now_ms=self._now_ms()
        )

    def send_typing(
        self, payload: Any, *, author: Author, connection_id: str, connection_room: str | None
    ) -> bool:
        return service.send_typing(
            payload,
            author=author,
            connection_id=connection_id,
            connection_room=connection_room,
            presence=self.presence(),
            region=self.settings.region,
            now_ms=self._now_ms(),
        )

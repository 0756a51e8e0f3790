"""The chat's rules as a handler calls them: chat/service.py's and chat/fanout.py's functions
bound to this container's ports, settings and clock. The composition root (chat/composition.py)
builds one of each per container; the ports come as factories, so an adapter is made only when a
handler first needs it (the HTTP API function never makes the fan-out's, and health checks never
read the session keys)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chat import fanout, service
from chat.fanout_pages import Page
from chat.model import Author, Connection, Message, Transport
from chat.ports import (
    AccountVerifier,
    ConnectionCloser,
    ConnectionStore,
    KeySource,
    MessageStore,
    PageQueue,
    Pusher,
    RateLimiter,
    SessionRevocations,
)
from chat.posting import TimeLeft, time_to_post
from chat.sessions import Session
from chat.settings import Settings


@dataclass(frozen=True)
class ChatService:
    settings: Settings
    clock: Callable[[], float]  # seconds since the epoch
    messages: Callable[[], MessageStore]
    connections: Callable[[], ConnectionStore]
    limiter: Callable[[], RateLimiter]
    keys: Callable[[], KeySource]
    revocations: Callable[[], SessionRevocations]
    accounts: Callable[[], AccountVerifier | None]

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

    def close_connection(self, connection_id: str) -> None:
        self.connections().delete_connection(connection_id)


@dataclass(frozen=True)
class FanoutService:
    settings: Settings
    connections: Callable[[], ConnectionStore]
    pusher: Callable[[TimeLeft], Pusher]  # one that starts no post once the time left is up
    pages: Callable[[], PageQueue]
    closer: Callable[[], ConnectionCloser]
    posting_margin_seconds: float  # what the posts in flight and the hand-back need

    def fan_out(
        self, records: Sequence[fanout.StreamRecord], *, remaining_ms: Callable[[], int]
    ) -> fanout.FanoutResult:
        time_left = time_to_post(remaining_ms, self.posting_margin_seconds)
        return fanout.fan_out(
            records,
            connections=self.connections(),
            pusher=self.pusher(time_left),
            pages=self.pages(),
            region=self.settings.region,
            concurrency=self.settings.fanout_concurrency,
            page_posts=self.settings.fanout_page_posts,
            time_left=time_left,
        )

    def post_page(self, page: Page, *, remaining_ms: Callable[[], int]) -> fanout.PageResult:
        time_left = time_to_post(remaining_ms, self.posting_margin_seconds)
        return fanout.post_page(
            page,
            connections=self.connections(),
            pusher=self.pusher(time_left),
            pages=self.pages(),
            concurrency=self.settings.fanout_concurrency,
            time_left=time_left,
        )

    def close_user(self, user_id: str) -> int:
        """Close this region's WebSockets of a signed-out user; how many were closed."""
        return self.closer().close_user(user_id)

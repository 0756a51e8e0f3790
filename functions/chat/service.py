"""The chat's rules as plain functions. They take their stores and settings as arguments and
never import boto3, so unit tests hand in fakes and every handler stays a few lines."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chat.model import (
    Connection,
    InvalidInput,
    Message,
    Transport,
    iso_time,
    parse_new_message,
    parse_page,
    validate_author,
    validate_room,
)
from chat.ports import ConnectionStore, MessageStore, StoreError
from chat.settings import Settings
from chat.ulid import timestamp_ms


def accept_message(
    payload: Any,
    *,
    transport: Transport,
    store: MessageStore,
    settings: Settings,
    now_ms: int,
    room: str | None = None,
) -> tuple[Message, bool]:
    """Validate and store a message idempotently: (stored message, True if it is new).

    A retry with the same id, in this region or the other, returns what was stored first.
    """
    new = parse_new_message(
        payload, room=room, now_ms=now_ms, max_skew_ms=settings.max_clock_skew_seconds * 1000
    )
    message = Message(
        id=new.id,
        room=new.room,
        author=new.author,
        text=new.text,
        sentAt=iso_time(timestamp_ms(new.id)),
        acceptedRegion=settings.region,
        transport=transport,
    )
    expires_at = now_ms // 1000 + settings.message_ttl_days * 86400
    return store.put_message(message, expires_at=expires_at)


def open_connection(
    connection_id: str,
    query: Mapping[str, str] | None,
    *,
    store: ConnectionStore,
    settings: Settings,
    now_ms: int,
) -> Connection:
    """Register a WebSocket connection for `?room=<room>&author=<name>`."""
    query = query or {}
    if "room" not in query or "author" not in query:
        raise InvalidInput("missing_field", "connect with ?room=<room>&author=<name>")
    room = validate_room(query["room"])
    author = validate_author(query["author"])
    store.put_connection(
        connection_id,
        room=room,
        author=author,
        connected_at=iso_time(now_ms),
        expires_at=now_ms // 1000 + settings.connection_ttl_seconds,
    )
    return Connection(connection_id=connection_id, room=room, author=author)


def read_history(
    room: str, *, after: str | None, limit: str | None, store: MessageStore, region: str
) -> dict[str, Any]:
    """One page of a room's history, oldest first, with the region that served it."""
    room = validate_room(room)
    after_id, page_size = parse_page(after, limit)
    messages, next_id = store.list_messages(room, after=after_id, limit=page_size)
    return {"messages": [m.to_json() for m in messages], "region": region, "next": next_id}


def check_health(
    *, messages: MessageStore, connections: ConnectionStore, region: str, now_ms: int
) -> tuple[bool, dict[str, Any]]:
    """Deep health: this region must read and write both of its tables."""
    checks: dict[str, str] = {}
    failing: str | None = None
    for name, probe in (
        ("messagesTable", messages.probe),
        ("connectionsTable", lambda: connections.probe(region, now_ms // 1000)),
    ):
        try:
            probe()
            checks[name] = "ok"
        except StoreError as error:
            checks[name] = error.code
            failing = failing or name
    body: dict[str, Any] = {"status": "ok" if failing is None else "unhealthy", "region": region}
    body["checks"] = checks
    if failing is not None:
        body["failing"] = failing
    body["checkedAt"] = iso_time(now_ms)
    return failing is None, body

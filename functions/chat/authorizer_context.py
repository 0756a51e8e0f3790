"""Who is on a WebSocket connection: the `$connect` authorizer's verdict, which API Gateway passes
to every event of the connection in `requestContext.authorizer`."""

from __future__ import annotations

from typing import Any

from chat.errors import Unauthorized
from chat.model import Author
from chat.observability import logger


def author_of(event: dict[str, Any]) -> Author:
    """The connection's user, as the `$connect` authorizer verified it. Never the body's or
    query's word."""
    context = event.get("requestContext", {}).get("authorizer") or {}
    user_id, name = context.get("userId"), context.get("name")
    if not isinstance(user_id, str) or not user_id or not isinstance(name, str) or not name:
        raise Unauthorized("this connection has no session: reconnect with ?token=")
    logger.append_keys(user_id=user_id)
    return Author(user_id=user_id, name=name)


def room_of(event: dict[str, Any]) -> str | None:
    """The connection's room, as the `$connect` authorizer validated it from `?room=`."""
    room = (event.get("requestContext", {}).get("authorizer") or {}).get("room")
    return room if isinstance(room, str) else None

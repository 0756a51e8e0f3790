"""WebSocket responses. API Gateway sends a route's response body back to the client as a frame
(the routes have a `$default` route response), so acks and errors cost no extra post."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from chat.model import Author, ChatError, parse_json
from chat.observability import logger
from chat.ports import StoreError
from chat.sessions import Unauthorized

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
FrameHandler = Callable[[Any, dict[str, Any]], dict[str, Any]]


def frame(payload: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": 200, "body": json.dumps(payload, ensure_ascii=False)}


def error_frame(message_id: Any, error: dict[str, Any]) -> dict[str, Any]:
    """`{"type": "error", "id", "code", "message"}`, and `retryAfterMs` when rate limited."""
    return frame({"type": "error", "id": message_id if isinstance(message_id, str) else None, **error})


def author_of(event: dict[str, Any]) -> Author:
    """The connection's user, as the `$connect` authorizer verified it: API Gateway passes the
    authorizer's context to every event of the connection. Never the body's or query's word."""
    context = event.get("requestContext", {}).get("authorizer") or {}
    user_id, name = context.get("userId"), context.get("name")
    if not isinstance(user_id, str) or not user_id or not isinstance(name, str) or not name:
        raise Unauthorized("this connection has no session: reconnect with ?token=")
    logger.append_keys(user_id=user_id)
    return Author(user_id=user_id, name=name)


def frame_route(handle: FrameHandler) -> Handler:
    """A route that answers a client's frame: `handle(body, event)` gets the frame's JSON, parsed
    once, and returns the answer frame.

    It never raises: API Gateway would answer a bare "Internal server error" frame that names no
    message. Chat errors become error frames naming the message's id when one could be read;
    anything else is logged and becomes an `internal_error` frame."""

    @functools.wraps(handle)
    def route(event: dict[str, Any], context: Any) -> dict[str, Any]:
        message_id: Any = None
        try:
            body = parse_json(event.get("body") or "")
            if isinstance(body, dict):
                message_id = body.get("id")
            return handle(body, event)
        except ChatError as error:
            return error_frame(message_id, error.to_json())
        except StoreError as error:
            logger.warning("store unavailable", error=str(error))
            return error_frame(
                message_id,
                {"code": "unavailable", "message": "this region could not store the message; retry it"},
            )
        except Exception:  # noqa: BLE001 - a WebSocket handler never raises
            logger.exception("websocket handler failed")
            return error_frame(
                message_id, {"code": "internal_error", "message": "the message was not stored; retry it"}
            )

    return route

"""WebSocket answers. API Gateway sends a route's response body back to the client as a frame
(the routes have a `$default` route response), so acks and errors cost no extra post."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from chat.error_responses import error_answer
from chat.json_input import parse_json

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
FrameHandler = Callable[[Any, dict[str, Any]], dict[str, Any]]


def frame(payload: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": 200, "body": json.dumps(payload, ensure_ascii=False)}


def error_frame(message_id: Any, error: dict[str, Any]) -> dict[str, Any]:
    """`{"type": "error", "id", "code", "message"}`, and `retryAfterMs` when rate limited."""
    return frame({"type": "error", "id": message_id if isinstance(message_id, str) else None, **error})


def frame_route(handle: FrameHandler) -> Handler:
    """A route that answers a client's frame: `handle(body, event)` gets the frame's JSON, parsed
    once, and returns the answer frame.

    It never raises: API Gateway would answer a bare "Internal server error" frame that names no
    message. Every error becomes the edge's answer (chat/error_responses.py) as an error frame
    naming the message's id when one could be read."""

    @functools.wraps(handle)
    def route(event: dict[str, Any], context: Any) -> dict[str, Any]:
        message_id: Any = None
        try:
            body = parse_json(event.get("body") or "")
            if isinstance(body, dict):
                message_id = body.get("id")
            return handle(body, event)
        except Exception as error:  # noqa: BLE001 - a WebSocket handler never raises
            return error_frame(message_id, error_answer(error).error)

    return route

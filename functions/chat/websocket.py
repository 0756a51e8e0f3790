"""WebSocket responses. API Gateway sends a route's response body back to the client as a frame
(the routes have a `$default` route response), so acks and errors cost no extra post."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from chat.model import ChatError
from chat.observability import logger
from chat.store import StoreError

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def frame(payload: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": 200, "body": json.dumps(payload, ensure_ascii=False)}


def error_frame(message_id: Any, code: str, message: str) -> dict[str, Any]:
    return frame(
        {
            "type": "error",
            "id": message_id if isinstance(message_id, str) else None,
            "code": code,
            "message": message,
        }
    )


def parse_body(event: dict[str, Any]) -> Any:
    try:
        return json.loads(event.get("body") or "")
    except (ValueError, TypeError) as error:
        raise ChatError("malformed_json", "the frame is not valid JSON") from error


def message_id_of(event: dict[str, Any]) -> Any:
    """The id the client sent, if any can be read, so that even an error names its message."""
    try:
        body = json.loads(event.get("body") or "")
    except (ValueError, TypeError):
        return None
    return body.get("id") if isinstance(body, dict) else None


def never_raises(handler: Handler) -> Handler:
    """A WebSocket handler must not raise: API Gateway would answer a bare "Internal server
    error" frame that names no message. Chat errors become error frames; anything else is
    logged and becomes an `internal_error` frame."""

    @functools.wraps(handler)
    def guarded(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            return handler(event, context)
        except ChatError as error:
            return error_frame(message_id_of(event), error.code, error.message)
        except StoreError as error:
            logger.warning("store unavailable", error=str(error))
            return error_frame(
                message_id_of(event), "unavailable", "this region could not store the message; retry it"
            )
        except Exception:  # noqa: BLE001 - a WebSocket handler never raises
            logger.exception("websocket handler failed")
            return error_frame(message_id_of(event), "internal_error", "the message was not stored; retry it")

    return guarded

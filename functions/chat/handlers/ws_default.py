"""WebSocket `$default`: a frame that no route takes gets an error frame. API Gateway routes here
every frame whose `action` is not a known route, including JSON that is not an object (route
selection on `$request.body.action` finds no action in it)."""

from __future__ import annotations

from typing import Any

from chat.model import ChatError, InvalidInput
from chat.observability import logger, metrics, traced
from chat.websocket import frame_route


@logger.inject_lambda_context
@metrics.log_metrics
@traced
@frame_route
def handler(body: Any, event: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInput("invalid_message", "the frame must be a JSON object")
    action = body.get("action")
    if action is None:
        raise ChatError("unknown_action", 'the frame has no \'action\'; send {"action": "sendMessage", ...}')
    raise ChatError(
        "unknown_action", f"unknown action {str(action)[:64]!r}; the only action is 'sendMessage'"
    )

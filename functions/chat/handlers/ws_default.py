"""WebSocket `$default`: any frame whose action is not a known route gets an error frame."""

from __future__ import annotations

from typing import Any

from chat.model import ChatError
from chat.observability import logger, metrics, traced
from chat.websocket import never_raises, parse_body


@logger.inject_lambda_context
@metrics.log_metrics
@traced
@never_raises
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    body = parse_body(event)
    action = body.get("action") if isinstance(body, dict) else None
    if action is None:
        raise ChatError("unknown_action", 'the frame has no \'action\'; send {"action": "sendMessage", ...}')
    raise ChatError(
        "unknown_action", f"unknown action {str(action)[:64]!r}; the only action is 'sendMessage'"
    )

"""WebSocket `$default`: a frame that no route takes gets an error frame. API Gateway routes here
every frame whose `action` is not a known route (`sendMessage`, `editMessage`, `deleteMessage`,
`typing`, `ping`), including JSON that is not an object (route selection on `$request.body.action` finds no
action in it)."""

from __future__ import annotations

from typing import Any

from chat.authorizer_context import author_of
from chat.errors import ChatError, InvalidInput
from chat.frames import frame_route
from chat.observability import API_REQUEST_ID, lambda_handler


@lambda_handler(API_REQUEST_ID)
@frame_route
def handler(body: Any, event: dict[str, Any]) -> dict[str, Any]:
    author_of(event)  # logs who sent it: the authorizer's context reaches every route
    if not isinstance(body, dict):
        raise InvalidInput("invalid_message", "the frame must be a JSON object")
    action = body.get("action")
    if action is None:
        raise ChatError("unknown_action", 'the frame has no \'action\'; send {"action": "sendMessage", ...}')
    raise ChatError(
        "unknown_action",
        f"unknown action {str(action)[:64]!r}; the actions are 'sendMessage', 'editMessage',"
        " 'deleteMessage', 'typing' and 'ping'",
    )

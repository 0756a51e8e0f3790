"""WebSocket `sendMessage`, `editMessage` and `deleteMessage` (the routes share one function):
validate, admit under the sender's rate, make the one conditional write under the sender's
identity, answer an ack or an error frame."""

from __future__ import annotations

import time
from typing import Any

from chat import clients
from chat.edits import change_message
from chat.observability import API_REQUEST_ID, count, lambda_handler, logger
from chat.service import accept_message
from chat.settings import get_settings
from chat.websocket import author_of, frame, frame_route

CHANGES = {"editMessage": "MessagesEdited", "deleteMessage": "MessagesDeleted"}  # route key -> metric


@lambda_handler(API_REQUEST_ID)
@frame_route
def handler(body: Any, event: dict[str, Any]) -> dict[str, Any]:
    logger.append_keys(connection_id=event["requestContext"]["connectionId"])
    route = event["requestContext"].get("routeKey")
    now_ms = int(time.time() * 1000)
    if route in CHANGES:
        message, changed = change_message(
            body,
            edit=route == "editMessage",
            author=author_of(event),
            changes=clients.message_changes(),
            limiter=clients.rate_limiter(),
            settings=get_settings(),
            now_ms=now_ms,
        )
        count(CHANGES[route] if changed else "UnchangedMessages")
    else:
        message, created = accept_message(
            body,
            author=author_of(event),
            transport="websocket",
            store=clients.message_store(),
            limiter=clients.rate_limiter(),
            settings=get_settings(),
            now_ms=now_ms,
        )
        count("MessagesAccepted" if created else "DuplicateMessages")
    return frame({"type": "ack", "id": message.id, "acceptedRegion": message.acceptedRegion})

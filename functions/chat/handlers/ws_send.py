"""WebSocket `sendMessage`: validate, admit under the sender's rate, store idempotently under the
sender's identity, answer an ack or an error frame."""

from __future__ import annotations

from typing import Any

from chat.authorizer_context import author_of
from chat.composition import service
from chat.frames import frame, frame_route
from chat.observability import API_REQUEST_ID, count, lambda_handler, logger


@lambda_handler(API_REQUEST_ID)
@frame_route
def handler(body: Any, event: dict[str, Any]) -> dict[str, Any]:
    logger.append_keys(connection_id=event["requestContext"]["connectionId"])
    message, created = service().accept_message(body, author=author_of(event), transport="websocket")
    count("MessagesAccepted" if created else "DuplicateMessages")
    return frame({"type": "ack", "id": message.id, "acceptedRegion": message.acceptedRegion})

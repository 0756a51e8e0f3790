"""WebSocket `sendMessage`, `editMessage`, `deleteMessage` and `typing` (the routes share one
function): validate, admit under the sender's rate, make the one conditional write under the
sender's identity, answer an ack or an error frame. `typing` is never acknowledged and has its own
limit, one event per user per 2 s (chat/presence.py): only a bad frame gets an answer, an error frame."""

from __future__ import annotations

from typing import Any

from chat.authorizer_context import author_of, room_of
from chat.composition import service
from chat.frames import frame, frame_route
from chat.observability import API_REQUEST_ID, count, lambda_handler, logger

CHANGES = {"editMessage": "MessagesEdited", "deleteMessage": "MessagesDeleted"}  # route key -> metric


@lambda_handler(API_REQUEST_ID)
@frame_route
def handler(body: Any, event: dict[str, Any]) -> dict[str, Any]:
    connection_id = event["requestContext"]["connectionId"]
    logger.append_keys(connection_id=connection_id)
    route = event["requestContext"].get("routeKey")
    author = author_of(event)
    if route == "typing":
        sent = service().send_typing(
            body, author=author, connection_id=connection_id, connection_room=room_of(event)
        )
        count("TypingSent" if sent else "TypingDropped")
        return {"statusCode": 200}  # no body: no frame back
    if route in CHANGES:
        message, changed = service().change_message(body, edit=route == "editMessage", author=author)
        count(CHANGES[route] if changed else "UnchangedMessages")
    else:
        message, created = service().accept_message(body, author=author, transport="websocket")
        count("MessagesAccepted" if created else "DuplicateMessages")
    return frame({"type": "ack", "id": message.id, "acceptedRegion": message.acceptedRegion})

"""WebSocket `$connect`: register the connection for `?room=<room>`.

The route's Lambda authorizer has already verified `&token=` (API Gateway refuses the handshake
with 401 before this runs otherwise) and passes the session's user in `requestContext.authorizer`.
A non-200 answer refuses the handshake, so bad input never leaves a half-open connection; over
the per-user connection cap (one conditional write on the user's slots) the answer is 429, and a
handshake refused after its slot was taken gives the slot back.
"""

from __future__ import annotations

import json
from typing import Any

from chat.authorizer_context import author_of
from chat.composition import service
from chat.error_responses import error_answer
from chat.observability import API_REQUEST_ID, lambda_handler, logger


@lambda_handler(API_REQUEST_ID)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    connection_id = event["requestContext"]["connectionId"]
    logger.append_keys(connection_id=connection_id)
    try:
        connection = service().open_connection(
            connection_id, event.get("queryStringParameters"), author=author_of(event)
        )
    except Exception as error:  # noqa: BLE001 - a WebSocket handler never raises
        answer = error_answer(error)
        logger.info("connection refused", error=answer.error["code"])
        return {"statusCode": answer.status, "body": json.dumps({"error": answer.error})}
    logger.info("connected", room=connection.room)
    return {"statusCode": 200}

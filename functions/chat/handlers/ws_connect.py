"""WebSocket `$connect`: register the connection for `?room=<room>`.

The route's Lambda authorizer has already verified `&token=` (API Gateway refuses the handshake
with 401 before this runs otherwise) and passes the session's user in `requestContext.authorizer`.
A non-200 answer refuses the handshake, so bad input never leaves a half-open connection; over
the per-user connection cap (one conditional write on the user's slots) the answer is 429, and a
handshake refused after its slot was taken gives the slot back.
"""

from __future__ import annotations

import json
import time
from typing import Any

from chat import clients
from chat.model import ChatError
from chat.observability import API_REQUEST_ID, lambda_handler, logger
from chat.ports import StoreError
from chat.service import open_connection
from chat.settings import get_settings
from chat.websocket import author_of


def _refusal(status: int, error: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": status, "body": json.dumps({"error": error})}


@lambda_handler(API_REQUEST_ID)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    connection_id = event["requestContext"]["connectionId"]
    logger.append_keys(connection_id=connection_id)
    try:
        connection = open_connection(
            connection_id,
            event.get("queryStringParameters"),
            author=author_of(event),
            store=clients.connection_store(),
            settings=get_settings(),
            now_ms=int(time.time() * 1000),
        )
    except ChatError as error:
        logger.info("connection refused", error=error.code)
        return _refusal(error.status, error.to_json())
    except StoreError as error:
        logger.warning("store unavailable", error=str(error))
        return _refusal(
            503, {"code": "unavailable", "message": "this region cannot register the connection; retry"}
        )
    except Exception:  # noqa: BLE001 - a WebSocket handler never raises
        logger.exception("connect failed")
        return _refusal(500, {"code": "internal_error", "message": "retry"})
    logger.info("connected", room=connection.room)
    return {"statusCode": 200}

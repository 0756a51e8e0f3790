"""WebSocket `$connect`: register the connection for `?room=<room>&author=<name>`.

A non-200 answer refuses the handshake, so bad input never leaves a half-open connection.
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


def _refusal(status: int, code: str, message: str) -> dict[str, Any]:
    return {"statusCode": status, "body": json.dumps({"error": {"code": code, "message": message}})}


@lambda_handler(API_REQUEST_ID)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    connection_id = event["requestContext"]["connectionId"]
    logger.append_keys(connection_id=connection_id)
    try:
        connection = open_connection(
            connection_id,
            event.get("queryStringParameters"),
            store=clients.connection_store(),
            settings=get_settings(),
            now_ms=int(time.time() * 1000),
        )
    except ChatError as error:
        logger.info("connection refused", error=error.code)
        return _refusal(error.status, error.code, error.message)
    except StoreError as error:
        logger.warning("store unavailable", error=str(error))
        return _refusal(503, "unavailable", "this region cannot register the connection; retry")
    except Exception:  # noqa: BLE001 - a WebSocket handler never raises
        logger.exception("connect failed")
        return _refusal(500, "internal_error", "retry")
    logger.info("connected", room=connection.room)
    return {"statusCode": 200}

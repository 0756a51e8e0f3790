"""WebSocket `$disconnect`: forget the connection and give its user's slot back (the connection
cap). API Gateway ignores the answer, so a failure is only logged; the item's TTL, the fan-out's
410 handling and the slot's own expiry (chat/connection_slots.py) clean up behind it."""

from __future__ import annotations

from typing import Any

from chat.composition import connection_store
from chat.observability import API_REQUEST_ID, lambda_handler, logger


@lambda_handler(API_REQUEST_ID)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    connection_id = event["requestContext"]["connectionId"]
    logger.append_keys(connection_id=connection_id)
    try:
        connection_store().delete_connection(connection_id)
    except Exception:  # noqa: BLE001 - a WebSocket handler never raises
        logger.exception("disconnect cleanup failed")
    return {"statusCode": 200}

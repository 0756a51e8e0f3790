"""HTTP API: deep health, paged history, and posting a message (the fallback when no WebSocket
can be opened). Errors are `{"error": {"code", "message"}}` with a 4xx or 5xx status."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response

from chat import clients
from chat.model import ChatError, parse_json, validate_room
from chat.observability import API_REQUEST_ID, count, lambda_handler, logger
from chat.ports import StoreError
from chat.service import accept_message, check_health, read_history
from chat.settings import get_settings

app = APIGatewayHttpResolver()


def _json(status: int, body: dict[str, Any]) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, ensure_ascii=False),
        headers={"Cache-Control": "no-store"},
    )


def _now_ms() -> int:
    return int(time.time() * 1000)


@app.get("/health")
def health() -> Response[str]:
    healthy, body = check_health(
        messages=clients.message_store(),
        connections=clients.connection_store(),
        region=get_settings().region,
        now_ms=_now_ms(),
    )
    return _json(200 if healthy else 503, body)


@app.get("/rooms/<room>/messages")
def history(room: str) -> Response[str]:
    params = app.current_event.query_string_parameters or {}
    page = read_history(
        room,
        after=params.get("after"),
        limit=params.get("limit"),
        store=clients.message_store(),
        region=get_settings().region,
    )
    return _json(200, page)


def _raw_body() -> str | bytes:
    """The body as the client sent it: API Gateway base64-encodes bodies that are not text."""
    event = app.current_event
    body = event.body or ""
    return base64.b64decode(body) if event.is_base64_encoded else body


@app.post("/rooms/<room>/messages")
def post_message(room: str) -> Response[str]:
    message, created = accept_message(
        parse_json(_raw_body()),
        room=room,
        transport="http",
        store=clients.message_store(),
        settings=get_settings(),
        now_ms=_now_ms(),
    )
    count("MessagesAccepted" if created else "DuplicateMessages")
    return _json(201 if created else 200, message.to_json())


@app.exception_handler(ChatError)  # type: ignore[untyped-decorator]
def chat_error(error: ChatError) -> Response[str]:
    return _json(error.status, {"error": error.to_json()})


@app.exception_handler(StoreError)  # type: ignore[untyped-decorator]
def store_error(error: StoreError) -> Response[str]:
    logger.warning("store unavailable", error=str(error))
    return _json(
        503, {"error": {"code": "unavailable", "message": "this region cannot reach its table; retry"}}
    )


@app.exception_handler(Exception)  # type: ignore[untyped-decorator]
def unexpected_error(error: Exception) -> Response[str]:
    # The client gets our JSON error shape rather than API Gateway's bare 500 for a crashed function.
    logger.exception("http handler failed")
    return _json(500, {"error": {"code": "internal_error", "message": "the request failed; retry it"}})


@app.not_found
def not_found(_: Exception) -> Response[str]:
    # API Gateway routes `/rooms/{room}/messages` for any one segment, but the resolver matches only
    # its own character class: such a segment is a bad room (400), not a missing route.
    path = app.current_event.path
    if path.startswith("/rooms/") and path.endswith("/messages") and path.count("/") == 3:
        try:
            validate_room(path.split("/")[2])
        except ChatError as error:
            return _json(error.status, {"error": error.to_json()})
    # Anything else never reaches a function in AWS: answer as API Gateway does for no route.
    return Response(status_code=404, content_type="application/json", body='{"message":"Not Found"}')


@lambda_handler(API_REQUEST_ID)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)

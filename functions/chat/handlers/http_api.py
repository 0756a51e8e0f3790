"""HTTP API: deep health, sessions, paged history, posting a message (the fallback when no
WebSocket can be opened), editing and deleting one, and a room's presence.
Errors are `{"error": {"code", "message"}}` with a 4xx or 5xx status.

The rooms' routes verify `Authorization: Bearer <session>` here, at the function's edge, not in an
HTTP API Lambda authorizer: that authorizer can only answer API Gateway's own
`{"message":"Unauthorized"}` body, which the contract's `{"error": {"code": "unauthorized"}}`
cannot be, and it would cost a second invocation per request (docs/architecture.md)."""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from chat.composition import service
from chat.edits import parse_change
from chat.error_responses import error_answer
from chat.errors import ChatError
from chat.json_input import parse_json
from chat.model import Author
from chat.observability import API_REQUEST_ID, count, lambda_handler, logger
from chat.validation import validate_room

app = APIGatewayHttpResolver()


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, ensure_ascii=False),
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


@app.get("/health")
def health() -> Response[str]:
    healthy, body = service().check_health()
    return _json(200 if healthy else 503, body)


def require_session(resolver: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[str]:
    """The rooms' routes: the caller's session, or 401. The user id is logged with the request
    id on every rooms request, so an access-log line leads to an identity."""
    author = service().authenticate(resolver.current_event.headers.get("authorization"))
    logger.append_keys(user_id=author.user_id)
    logger.info("rooms request", route=resolver.current_event.route_key)
    resolver.context["author"] = author  # cleared by the resolver after each request
    return next_middleware(resolver)


def _author() -> Author:
    author: Author = app.context["author"]
    return author


@app.post("/session")
def session() -> Response[str]:
    body = service().sign_in(
        parse_json(_raw_body()),
        authorization=app.current_event.headers.get("authorization"),
        source_ip=app.current_event.request_context.http.source_ip,
    )
    logger.info("session issued", user_id=body["user"]["id"])
    count("SessionsIssued")
    return _json(201, body)


@app.delete("/session")
def end_session() -> Response[str]:
    """Sign-out: 204, and the session (every token renewed from it) is refused in every region."""
    ended = service().sign_out(app.current_event.headers.get("authorization"))
    logger.info("session signed out", user_id=ended.user_id)
    count("SessionsSignedOut")
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


@app.get("/rooms/<room>/messages", middlewares=[require_session])
def history(room: str) -> Response[str]:
    params = app.current_event.query_string_parameters or {}
    page = service().read_history(room, after=params.get("after"), limit=params.get("limit"))
    return _json(200, page)


@app.get("/rooms/<room>/presence", middlewares=[require_session])
def presence(room: str) -> Response[str]:
    return _json(200, service().read_presence(room))


def _raw_body() -> str | bytes:
    """The body as the client sent it: API Gateway base64-encodes bodies that are not text."""
    event = app.current_event
    body = event.body or ""
    return base64.b64decode(body) if event.is_base64_encoded else body


@app.post("/rooms/<room>/messages", middlewares=[require_session])
def post_message(room: str) -> Response[str]:
    message, created = service().accept_message(
        parse_json(_raw_body()), room=room, author=_author(), transport="http"
    )
    count("MessagesAccepted" if created else "DuplicateMessages")
    return _json(201 if created else 200, message.to_json())


def _change(room: str, message_id: str, *, edit: bool) -> Response[str]:
    """`PATCH` (edit) or `DELETE` of the caller's own message: 200 and the message after it."""
    message, changed = service().change_message(
        parse_json(_raw_body()) if edit else None,
        edit=edit,
        room=room,
        message_id=message_id,
        author=_author(),
    )
    count(("MessagesEdited" if edit else "MessagesDeleted") if changed else "UnchangedMessages")
    return _json(200, message.to_json())


@app.patch("/rooms/<room>/messages/<message_id>", middlewares=[require_session])
def edit_message(room: str, message_id: str) -> Response[str]:
    return _change(room, message_id, edit=True)


@app.delete("/rooms/<room>/messages/<message_id>", middlewares=[require_session])
def delete_message(room: str, message_id: str) -> Response[str]:
    return _change(room, message_id, edit=False)


@app.exception_handler(Exception)  # type: ignore[untyped-decorator]
def answer_error(error: Exception) -> Response[str]:
    # Every error gets the edge's answer in our JSON shape, a crashed function's too (rather
    # than API Gateway's bare 500).
    answer = error_answer(error)
    return _json(answer.status, {"error": answer.error}, answer.headers)


@app.not_found
def not_found(_: Exception) -> Response[str]:
    # API Gateway routes `/rooms/{room}/messages[/{id}]` for any one segment each, but the resolver
    # matches only its own character class: such a segment is a bad room or id (400), not a
    # missing route.
    segments = app.current_event.path.split("/")
    if segments[:2] == ["", "rooms"] and len(segments) == 4 and segments[3] == "presence":
        try:
            validate_room(segments[2])
        except ChatError as error:
            return _json(error.status, {"error": error.to_json()})
    if segments[:2] == ["", "rooms"] and len(segments) in (4, 5) and segments[3] == "messages":
        try:
            validate_room(segments[2])
            if len(segments) == 5:
                parse_change(None, edit=False, room=segments[2], message_id=segments[4])
        except ChatError as error:
            return _json(error.status, {"error": error.to_json()})
    # Anything else never reaches a function in AWS: answer as API Gateway does for no route.
    return Response(status_code=404, content_type="application/json", body='{"message":"Not Found"}')


@lambda_handler(API_REQUEST_ID)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)

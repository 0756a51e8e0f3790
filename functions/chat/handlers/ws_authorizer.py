"""The WebSocket API's Lambda REQUEST authorizer on `$connect` (identity source
`route.request.querystring.token`: API Gateway itself answers 401 when `token` is absent).

A valid session gets an Allow policy for the `$connect` route and the context `{userId, name}`,
plus `room` when `?room=` is a valid room name (`[a-z0-9-]{1,64}`; otherwise it is left out and
`$connect` refuses the handshake with 400). API Gateway hands that context to `$connect` and to
every later event of the connection in `requestContext.authorizer`, and to the mapping templates
of its routes as `$context.authorizer.<key>`: the heartbeat's integration reads the room's newest
message id with `$context.authorizer.room` (template.yaml, `PingIntegration`), which is why only a
validated room may get there. The route handlers never verify again and never read a body's
author. A bad, too old or signed-out token raises `Unauthorized`, the one exception API Gateway
turns into a 401; any other failure (the keys or the sign-out records cannot be read) is API
Gateway's 500, so a client retries rather than believing its session is bad.
"""

from __future__ import annotations

from typing import Any

from chat.composition import service
from chat.errors import InvalidInput, Unauthorized
from chat.observability import API_REQUEST_ID, lambda_handler, logger
from chat.validation import validate_room


def _room(query: dict[str, Any]) -> dict[str, str]:
    """`{"room": <room>}` for a valid room name, else nothing (context values are strings)."""
    try:
        return {"room": validate_room(query.get("room"))}
    except InvalidInput:
        return {}


@lambda_handler(API_REQUEST_ID)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    query = event.get("queryStringParameters") or {}
    token = query.get("token") or ""
    try:
        session = service().current_session(f"Bearer {token}")
    except Unauthorized as error:
        logger.info("connection refused", reason=error.message)  # never the token itself
        raise Exception("Unauthorized") from None  # API Gateway's one word for a 401
    logger.info("connection authorized", user_id=session.user_id)
    return {
        "principalId": session.user_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}
            ],
        },
        "context": {"userId": session.user_id, "name": session.name, **_room(query)},
    }

"""The WebSocket API's Lambda REQUEST authorizer on `$connect` (identity source
`route.request.querystring.token`: API Gateway itself answers 401 when `token` is absent).

A valid session gets an Allow policy for the `$connect` route and the context `{userId, name}`,
which API Gateway hands to `$connect` and to every later event of that connection in
`requestContext.authorizer`: the route handlers never verify again and never read a body's
author. A bad token raises `Unauthorized`, the one exception API Gateway turns into a 401; any
other failure (the keys cannot be read) is API Gateway's 500, so a client retries rather than
believing its session is bad.
"""

from __future__ import annotations

import time
from typing import Any

from chat import clients
from chat.observability import API_REQUEST_ID, lambda_handler, logger
from chat.sessions import Unauthorized, verify


@lambda_handler(API_REQUEST_ID)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    token = (event.get("queryStringParameters") or {}).get("token") or ""
    try:
        session = verify(token, clients.session_keys().signing_keys(), now=int(time.time()))
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
        "context": {"userId": session.user_id, "name": session.name},
    }

"""Events for the handlers, checked against powertools' parser models of what AWS sends."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventV2Model,
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
    DynamoDBStreamModel,
)

from localcloud.apigateway.events import http_event, websocket_event

STAGE = "prod"
_WS_MODELS: dict[str, Any] = {
    "$connect": APIGatewayWebSocketConnectEventModel,
    "$disconnect": APIGatewayWebSocketDisconnectEventModel,
}


# What the $connect authorizer returned as context: API Gateway passes it to every event of the
# connection in requestContext.authorizer (with the policy's principalId).
ADA = {"userId": "g_ADA0000000000000000000000", "name": "Ada"}


def ws(
    route_key: str,
    connection_id: str,
    *,
    body: str | None = None,
    query: dict[str, str] | None = None,
    user: dict[str, str] | None = ADA,
) -> dict[str, Any]:
    event = websocket_event(
        api_id="abc123",
        domain="abc123.execute-api.us-east-1.amazonaws.com",
        stage=STAGE,
        route_key=route_key,
        connection_id=connection_id,
        connected_at_ms=1_790_000_000_000,
        source_ip="127.0.0.1",
        user_agent="pytest",
        body=body,
        headers=[("Host", "abc123.execute-api.us-east-1.amazonaws.com")]
        if route_key in ("$connect", "$disconnect")
        else None,
        query_pairs=list(query.items()) if query is not None else None,
        disconnect=(1000, "Client closed") if route_key == "$disconnect" else None,
    )
    _WS_MODELS.get(route_key, APIGatewayWebSocketMessageEventModel).model_validate(event)
    if user is not None and route_key != "$disconnect":
        event["requestContext"]["authorizer"] = {"principalId": user["userId"], **user}
    return event


def send_frame(
    connection_id: str, message: dict[str, Any] | str, user: dict[str, str] | None = ADA
) -> dict[str, Any]:
    body = message if isinstance(message, str) else json.dumps({"action": "sendMessage", **message})
    return ws("sendMessage", connection_id, body=body, user=user)


def http(
    method: str,
    path: str,
    *,
    route: str,
    params: dict[str, str] | None = None,
    query: str = "",
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    # API Gateway hands the handler each query parameter percent-decoded.
    pairs = [tuple(unquote(part) for part in p.split("=", 1)) for p in query.split("&") if p]
    event = http_event(
        api_id="xyz789",
        domain="xyz789.execute-api.us-east-1.amazonaws.com",
        method=method,
        path=path,
        raw_query=query,
        query_pairs=pairs,  # type: ignore[arg-type]
        headers=[
            ("content-type", "application/json"),
            ("user-agent", "pytest"),
            *([("authorization", f"Bearer {token}")] if token else []),
            *(headers or []),
        ],
        route_key=route,
        path_parameters=params or {},
        body=body,
        source_ip="127.0.0.1",
    )
    APIGatewayProxyEventV2Model.model_validate(event)
    return event


def stream_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    event = {"Records": records}
    DynamoDBStreamModel.model_validate(event)
    return event


def frame_of(response: dict[str, Any]) -> dict[str, Any]:
    assert response["statusCode"] == 200
    body: dict[str, Any] = json.loads(response["body"])
    return body


def authorizer_event(token: str | None, *, connection_id: str = "c-auth") -> dict[str, Any]:
    """A WebSocket API's REQUEST authorizer input as the API Gateway developer guide documents it
    ("Control access to WebSocket APIs with AWS Lambda REQUEST authorizers")."""
    query = {"room": "lobby", **({"token": token} if token is not None else {})}
    return {
        "type": "REQUEST",
        "methodArn": f"arn:aws:execute-api:us-east-1:123456789012:abc123/{STAGE}/$connect",
        "headers": {"Host": "abc123.execute-api.us-east-1.amazonaws.com", "Upgrade": "websocket"},
        "multiValueHeaders": {
            "Host": ["abc123.execute-api.us-east-1.amazonaws.com"],
            "Upgrade": ["websocket"],
        },
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()},
        "stageVariables": {},
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "extendedRequestId": "ABCD1234=",
            "requestTime": "09/Feb/2019:18:30:06 +0000",
            "messageDirection": "IN",
            "stage": STAGE,
            "connectedAt": 1549737006543,
            "requestTimeEpoch": 1549737006543,
            "identity": {"userAgent": "pytest", "sourceIp": "127.0.0.1"},
            "requestId": "ABCD1234=",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "connectionId": connection_id,
            "apiId": "abc123",
        },
    }

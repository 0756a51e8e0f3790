"""API Gateway v2 events, shaped as AWS sends them to a Lambda proxy integration."""

from __future__ import annotations

import base64
import secrets
import string
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from localcloud.lambda_.context import ACCOUNT_ID

_ID_ALPHABET = string.ascii_letters + string.digits


def _request_time(now: float) -> str:
    return datetime.fromtimestamp(now, tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def new_connection_id() -> str:
    """Shaped like API Gateway's ('L0SM9cOFvHcCIhw='): 15 letters and digits and a '='."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(15)) + "="


def new_request_id() -> str:
    return base64.b64encode(secrets.token_bytes(6)).decode().rstrip("=") + "="


def _query(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        multi.setdefault(key, []).append(value)
    # The REST-style payload that WebSocket APIs use keeps the last value in the single map.
    return {k: v[-1] for k, v in multi.items()}, multi


def http_event(
    *,
    api_id: str,
    domain: str,
    method: str,
    path: str,
    raw_query: str,
    query_pairs: Iterable[tuple[str, str]],
    headers: Iterable[tuple[str, str]],
    route_key: str,
    path_parameters: Mapping[str, str],
    body: bytes,
    source_ip: str,
) -> dict[str, Any]:
    """HTTP API payload format 2.0."""
    now = time.time()
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        name = name.lower()
        if name == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    query: dict[str, str] = {}
    for key, value in query_pairs:
        query[key] = f"{query[key]},{value}" if key in query else value
    try:
        text, is_base64 = body.decode(), False
    except UnicodeDecodeError:
        text, is_base64 = base64.b64encode(body).decode(), True
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": joined,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": api_id,
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": new_request_id(),
            "routeKey": route_key,
            "stage": "$default",
            "time": _request_time(now),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": is_base64,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if body:
        event["body"] = text
    return event


def websocket_event(
    *,
    api_id: str,
    domain: str,
    stage: str,
    route_key: str,
    connection_id: str,
    connected_at_ms: int,
    source_ip: str,
    user_agent: str,
    body: str | None = None,
    is_base64: bool = False,
    headers: Iterable[tuple[str, str]] | None = None,
    query_pairs: Iterable[tuple[str, str]] | None = None,
    disconnect: tuple[int, str] | None = None,
    authorizer: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A WebSocket API event: CONNECT carries headers and query string, MESSAGE carries the body;
    on a route behind an authorizer, every event of the connection carries what it returned."""
    now = time.time()
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route_key, "MESSAGE")
    context: dict[str, Any] = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": new_request_id(),
        "requestTime": _request_time(now),
        "messageDirection": "IN",
        "stage": stage,
        "connectedAt": connected_at_ms,
        "requestTimeEpoch": int(now * 1000),
        "identity": {"sourceIp": source_ip, "userAgent": user_agent},
        "requestId": new_request_id(),
        "domainName": domain,
        "connectionId": connection_id,
        "apiId": api_id,
    }
    if event_type == "MESSAGE":
        context["messageId"] = new_request_id()
    if disconnect is not None:
        context["disconnectStatusCode"], context["disconnectReason"] = disconnect
    if authorizer is not None:
        context["authorizer"] = dict(authorizer)
    event: dict[str, Any] = {"requestContext": context, "isBase64Encoded": is_base64}
    if headers is not None:
        single: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        for name, value in headers:
            single[name] = value
            multi.setdefault(name, []).append(value)
        event["headers"], event["multiValueHeaders"] = single, multi
    if query_pairs is not None:
        query, multi_query = _query(query_pairs)
        if query:
            event["queryStringParameters"] = query
            event["multiValueQueryStringParameters"] = multi_query
    if body is not None:
        event["body"] = body
    return event


def authorizer_event(connect_event: Mapping[str, Any], *, region: str) -> dict[str, Any]:
    """A WebSocket API's Lambda REQUEST authorizer input: the `$connect` event's headers, query
    string and request context, with `type` and the `methodArn` of the route being authorized."""
    context = connect_event["requestContext"]
    api = f"arn:aws:execute-api:{region}:{ACCOUNT_ID}:{context['apiId']}"
    method_arn = f"{api}/{context['stage']}/{context['routeKey']}"
    return {
        "type": "REQUEST",
        "methodArn": method_arn,
        **{k: v for k, v in connect_event.items() if k != "isBase64Encoded"},
        "stageVariables": {},
    }

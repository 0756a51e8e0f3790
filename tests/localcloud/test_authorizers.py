"""The WebSocket API runs the template's `$connect` authorizer as API Gateway does: what refuses
a handshake with which status, and the authorizer's answer on every event of the connection.

The functions are played by a recording fake, so each of API Gateway's rules is checked on its
own; tests/e2e checks the same path with the real handlers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
import websockets
from aiohttp import web
from aiohttp.test_utils import TestServer
from websockets.exceptions import InvalidStatus

from localcloud.apigateway.authorizers import LambdaRequestAuthorizer, Refused
from localcloud.apigateway.events import websocket_event
from localcloud.apigateway.websocket_api import WebSocketApi
from stack_definition.template import load

TEMPLATE = load()
CONNECT = TEMPLATE.websocket_routes["$connect"]
AUTHORIZER = CONNECT.authorizer
ADA = {"userId": "g_ADA", "name": "ada"}
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:websocketapi-us-east-1/prod/$connect"


def answer(effect: str = "Allow", resource: str = "arn:aws:execute-api:*", **changes: Any) -> Any:
    """What the authorizer returns: a policy for `resource`, principal and context (`changes`)."""
    statement = {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}
    policy = {"Version": "2012-10-17", "Statement": [statement]}
    return {"principalId": "g_ADA", "policyDocument": policy, "context": ADA} | changes


ALLOW = answer()


class Functions:
    """Plays the region's functions: the authorizer answers `authorize(event)`, the rest 200."""

    def __init__(self, authorize: Callable[[dict[str, Any]], Any]) -> None:
        self.authorize = authorize
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def invoke(self, function_id: str, event: dict[str, Any]) -> Any:
        self.events.append((function_id, event))
        if AUTHORIZER is not None and function_id == AUTHORIZER.function:
            return self.authorize(event)
        return {"statusCode": 200, "body": json.dumps({"type": "ack"})}

    def invoked(self, function_id: str) -> list[dict[str, Any]]:
        return [event for name, event in self.events if name == function_id]


def raises(error: Exception) -> Callable[[dict[str, Any]], Any]:
    def authorize(_: dict[str, Any]) -> Any:
        raise error

    return authorize


def connect_event(query: dict[str, str]) -> dict[str, Any]:
    return websocket_event(
        api_id="websocketapi-us-east-1",
        domain="127.0.0.1",
        stage="prod",
        route_key="$connect",
        connection_id="c1",
        connected_at_ms=0,
        source_ip="127.0.0.1",
        user_agent="pytest",
        headers=[("Host", "127.0.0.1")],
        query_pairs=query.items(),
    )


def authorize(functions: Functions, query: dict[str, str]) -> dict[str, Any]:
    assert AUTHORIZER is not None
    authorizer = LambdaRequestAuthorizer(AUTHORIZER, functions, region="us-east-1")  # type: ignore[arg-type]
    return asyncio.run(authorizer.authorize(connect_event(query)))


def test_the_template_puts_a_request_authorizer_on_connect_reading_the_token_from_the_query() -> None:
    assert AUTHORIZER is not None
    assert AUTHORIZER.identity_sources == ["route.request.querystring.token"]
    assert AUTHORIZER.function in TEMPLATE.functions
    assert all(
        route.authorizer is None for key, route in TEMPLATE.websocket_routes.items() if key != "$connect"
    )


@pytest.mark.parametrize("query", [{"room": "lobby"}, {"room": "lobby", "token": ""}])
def test_a_missing_identity_source_is_401_without_invoking_the_authorizer(query: dict[str, str]) -> None:
    functions = Functions(lambda _: ALLOW)
    with pytest.raises(Refused) as refused:
        authorize(functions, query)
    assert refused.value.status == 401
    assert functions.events == []


@pytest.mark.parametrize(
    ("authorize_as", "status"),
    [
        (raises(Exception("Unauthorized")), 401),
        (raises(RuntimeError("the keys cannot be read")), 500),
        (raises(TimeoutError()), 500),
        (lambda _: answer("Deny"), 403),
        (lambda _: answer(resource="arn:aws:execute-api:eu-west-2:*"), 403),
        (lambda _: answer(principalId=""), 500),
        (lambda _: answer(context={"user": {"nested": "objects are refused"}}), 500),
        (lambda _: "Allow", 500),
    ],
    ids=[
        "unauthorized",
        "error",
        "timeout",
        "deny",
        "allow-elsewhere",
        "no-principal",
        "nested",
        "no-policy",
    ],
)
def test_what_the_authorizer_answers_decides_the_status(authorize_as: Any, status: int) -> None:
    with pytest.raises(Refused) as refused:
        authorize(Functions(authorize_as), {"room": "lobby", "token": "t"})
    assert refused.value.status == status


def test_an_allow_policy_passes_the_context_and_principal_on_and_the_authorizer_sees_the_route() -> None:
    functions = Functions(lambda _: ALLOW)
    context = authorize(functions, {"room": "lobby", "token": "t"})
    assert context == {**ADA, "principalId": "g_ADA"}
    assert AUTHORIZER is not None
    (event,) = functions.invoked(AUTHORIZER.function)
    assert event["type"] == "REQUEST"
    assert event["methodArn"] == METHOD_ARN
    assert event["queryStringParameters"] == {"room": "lobby", "token": "t"}


async def _serve(functions: Functions) -> TestServer:
    api = WebSocketApi(
        TEMPLATE,
        functions,  # type: ignore[arg-type]
        region="us-east-1",
        api_id="websocketapi-us-east-1",
        domain="127.0.0.1",
        stage={"StageName": "prod"},
    )
    app = web.Application()
    api.add_routes(app)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


def test_every_event_of_an_authorized_connection_carries_the_authorizers_answer() -> None:
    functions = Functions(lambda _: ALLOW)

    async def scenario() -> None:
        server = await _serve(functions)
        try:
            url = f"ws://127.0.0.1:{server.port}/prod?room=lobby&token=t"
            async with websockets.connect(url) as socket:
                await socket.send(json.dumps({"action": "sendMessage", "text": "hi"}))
                await socket.recv()  # the route's answer: the event has been handled
                await socket.send(json.dumps({"action": "wave"}))  # no such route: $default
                await socket.recv()
            disconnect = TEMPLATE.websocket_routes["$disconnect"].function
            assert disconnect is not None
            async with asyncio.timeout(10):
                while not functions.invoked(disconnect):
                    await asyncio.sleep(0.02)  # $disconnect runs after the close, in the background
        finally:
            await server.close()

    asyncio.run(scenario())
    assert AUTHORIZER is not None
    routed = [event for name, event in functions.events if name != AUTHORIZER.function]
    routes = [event["requestContext"]["routeKey"] for event in routed]
    assert routes == ["$connect", "sendMessage", "$default", "$disconnect"]
    for event in routed:
        assert event["requestContext"]["authorizer"] == {**ADA, "principalId": "g_ADA"}


@pytest.mark.parametrize(
    ("authorize_as", "query", "status"),
    [
        (lambda _: ALLOW, "room=lobby", 401),
        (raises(Exception("Unauthorized")), "room=lobby&token=junk", 401),
        (raises(RuntimeError("boom")), "room=lobby&token=t", 500),
    ],
)
def test_a_refused_handshake_never_reaches_connect(authorize_as: Any, query: str, status: int) -> None:
    functions = Functions(authorize_as)

    async def scenario() -> None:
        server = await _serve(functions)
        try:
            with pytest.raises(InvalidStatus) as refused:
                await websockets.connect(f"ws://127.0.0.1:{server.port}/prod?{query}")
            assert refused.value.response.status_code == status
        finally:
            await server.close()

    asyncio.run(scenario())
    assert CONNECT.function is not None
    assert functions.invoked(CONNECT.function) == []

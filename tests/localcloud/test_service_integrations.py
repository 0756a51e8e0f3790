"""The heartbeat route as API Gateway plays it: `{"action": "ping"}` is answered by the template's
MOCK integration with its integration response (the pong), and no function runs for it. Each
message each way is counted as a WebSocket message, as AWS bills it, and no invocation."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from aiohttp import web
from aiohttp.test_utils import TestServer

from localcloud import aws_calls
from localcloud.cloudformation import Unresolvable
from localcloud.mock_integration import MockIntegration
from localcloud.template import load
from localcloud.websocket_api import WebSocketApi

TEMPLATE = load()
ALLOW = {
    "principalId": "g_ADA",
    "policyDocument": {
        "Version": "2012-10-17",
        "Statement": [
            {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "arn:aws:execute-api:*"}
        ],
    },
    "context": {"userId": "g_ADA", "name": "ada"},
}


class Functions:
    """Plays the region's functions and records each invocation: the authorizer allows, the rest 200."""

    def __init__(self) -> None:
        self.invoked: list[str] = []

    async def invoke(self, function_id: str, event: dict[str, Any]) -> Any:
        self.invoked.append(function_id)
        connect = TEMPLATE.websocket_routes["$connect"]
        if connect.authorizer is not None and function_id == connect.authorizer.function:
            return ALLOW
        return {"statusCode": 200, "body": json.dumps({"type": "error", "code": "unknown_action"})}


def test_the_template_pings_through_a_mock_integration_without_a_function() -> None:
    route = TEMPLATE.websocket_routes["ping"]
    assert route.function is None
    assert route.mock is not None
    assert route.two_way
    assert route.authorizer is None
    assert json.loads(route.mock.answer() or "") == {"type": "pong"}


def test_a_ping_is_answered_pong_by_the_api_itself_counted_as_two_messages_and_no_invocation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(aws_calls, "ENABLED", True)
    functions = Functions()
    pings = 5

    async def scenario() -> list[Any]:
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
        try:
            async with websockets.connect(f"ws://127.0.0.1:{server.port}/prod?room=lobby&token=t") as socket:
                aws_calls.counts(reset=True)  # from here on: the heartbeats only
                before = list(functions.invoked)
                answers = []
                for _ in range(pings):
                    await socket.send(json.dumps({"action": "ping"}))
                    answers.append(json.loads(await asyncio.wait_for(socket.recv(), 5)))
                assert functions.invoked == before  # no function ran for any ping
                return [answers, aws_calls.counts(reset=True)]
        finally:
            await server.close()

    answers, counts = asyncio.run(scenario())
    assert answers == [{"type": "pong"}] * pings
    assert counts == {"apigateway.WebSocketMessage": 2 * pings}


@pytest.mark.parametrize(
    ("props", "why"),
    [
        ({"RequestTemplates": {"$default": '{"statusCode": $input.path("$.code")}'}}, "VTL"),
        ({"TemplateSelectionExpression": "$request.body.kind", "RequestTemplates": {"x": "{}"}}, "literal"),
        ({"TemplateSelectionExpression": "\\$default", "RequestTemplates": {"$default": "{}"}}, "statusCode"),
    ],
)
def test_a_mock_integration_the_local_stack_cannot_play_is_refused_when_the_template_is_read(
    props: dict[str, Any], why: str
) -> None:
    props = {"TemplateSelectionExpression": "\\$default", **props}
    with pytest.raises(Unresolvable, match=why):
        MockIntegration.of("Mock", props, [])


def test_the_integration_response_whose_key_matches_the_status_answers() -> None:
    integration = MockIntegration(
        status=200, responses=(("$default", "default"), ("/4\\d\\d/", "client error"), ("/2\\d\\d/", "ok"))
    )
    assert integration.answer() == "ok"
    assert MockIntegration(status=404, responses=integration.responses).answer() == "client error"
    assert MockIntegration(status=500, responses=integration.responses).answer() == "default"

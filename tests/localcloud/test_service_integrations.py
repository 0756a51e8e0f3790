"""The heartbeat route as API Gateway plays it: `{"action": "ping"}` is answered by the template's
AWS service integration, DynamoDB `Query` on this region's messages table for the connection's
room (from the `$connect` authorizer's context), and no function runs for it. The answer is the
pong with the room's newest message id, or the `unavailable` error frame when DynamoDB fails.
Against a moto server, with real boto3 clients."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import websockets
from aiohttp import web
from aiohttp.test_utils import TestServer
from botocore.awsrequest import AWSResponse, HTTPHeaders
from moto.server import ThreadedMotoServer

from chat import ulid
from chat.store import message_key
from localcloud.apigateway.service_integrations import bind
from localcloud.apigateway.websocket_api import WebSocketApi
from localcloud.aws import call_counter, provision
from stack_definition.cloudformation import Unresolvable
from stack_definition.integrations import AwsIntegration, MockIntegration, Responses
from stack_definition.mapping_templates import MappingTemplate, select_response
from stack_definition.template import MESSAGES, load, table_names

TEMPLATE = load()
REGION = TEMPLATE.regions[0]
TABLE = table_names(TEMPLATE)[MESSAGES]
UNAVAILABLE = {
    "type": "error",
    "id": None,
    "code": "unavailable",
    "message": "this region cannot read its messages: reconnect to another region",
}


@pytest.fixture(scope="module")
def aws_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    provision.create_tables(TEMPLATE, endpoint, REGION)
    yield endpoint
    server.stop()


@pytest.fixture
def dynamodb(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The region process's environment (the integration's client finds the endpoint there, as
    the functions' do), and a client to write messages with."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", aws_endpoint)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "local")
    return provision.client("dynamodb", aws_endpoint, REGION)


class _Body(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


@pytest.fixture
def failing_dynamodb() -> Iterator[None]:
    """DynamoDB answering its own 500 to every call of a client made from boto3's default session
    (as the local `fail dynamodb` control plays it)."""
    error = {
        "__type": "com.amazonaws.dynamodb.v20120810#InternalServerError",
        "message": "Internal server error",
    }

    def answer(request: Any, **_: Any) -> Any:  # botocore sends no request when a handler answers
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/x-amz-json-1.0"
        return AWSResponse(request.url, 500, headers, _Body(json.dumps(error).encode()))

    session = boto3._get_default_session()
    session.events.register("before-send.dynamodb", answer)
    yield
    session.events.unregister("before-send.dynamodb", answer)


def _write(client: Any, room: str, message_id: str, author: str = "g_ADA") -> None:
    item = {**message_key(room, message_id, author), "id": {"S": message_id}, "text": {"S": "x" * 500}}
    client.put_item(TableName=TABLE, Item=item)


def _ping(room: str | None) -> dict[str, Any]:
    integration = TEMPLATE.websocket_routes["ping"].integration
    assert integration is not None
    bound = bind(integration, TEMPLATE.context(REGION))
    authorizer = {"userId": "g_ADA", "name": "ada"} | ({"room": room} if room is not None else {})
    answer = asyncio.run(bound.answer({"connectionId": "c1", "authorizer": authorizer}))
    assert answer is not None
    frame: dict[str, Any] = json.loads(answer)
    return frame


def test_the_template_pings_through_a_dynamodb_query_integration_without_a_function() -> None:
    route = TEMPLATE.websocket_routes["ping"]
    assert route.function is None
    assert route.two_way
    assert route.authorizer is None  # authorization happens once, at $connect
    assert isinstance(route.integration, AwsIntegration)
    assert (route.integration.service, route.integration.action) == ("dynamodb", "Query")


def test_given_a_room_with_messages_when_pinged_then_the_pong_names_its_newest_id_and_the_region(
    dynamodb: Any,
) -> None:
    room = f"ping-{ulid.new().lower()}"
    older, newest = sorted(ulid.new() for _ in range(2))
    _write(dynamodb, room, older)
    _write(dynamodb, room, newest, author="g_BOB")
    _write(dynamodb, f"{room}-other", ulid.new())  # another room's newer message is not this room's
    assert _ping(room) == {"type": "pong", "latest": newest, "region": REGION}


def test_given_an_empty_room_when_pinged_then_the_pong_names_no_message(dynamodb: Any) -> None:
    assert _ping(f"empty-{ulid.new().lower()}") == {"type": "pong", "latest": "", "region": REGION}


def test_given_a_connection_without_a_room_when_pinged_then_the_pong_names_no_message(dynamodb: Any) -> None:
    assert _ping(None) == {"type": "pong", "latest": "", "region": REGION}


def test_given_dynamodb_failing_when_pinged_then_the_answer_is_the_unavailable_error_frame(
    dynamodb: Any, failing_dynamodb: None
) -> None:
    room = f"ping-{ulid.new().lower()}"
    assert _ping(room) == UNAVAILABLE


class Functions:
    """Plays the region's functions and records each invocation: the authorizer allows (passing
    the room on, as ws_authorizer does), the rest answer 200."""

    def __init__(self) -> None:
        self.invoked: list[str] = []

    async def invoke(self, function_id: str, event: dict[str, Any]) -> Any:
        self.invoked.append(function_id)
        connect = TEMPLATE.websocket_routes["$connect"]
        if connect.authorizer is not None and function_id == connect.authorizer.function:
            room = event["queryStringParameters"]["room"]
            return {
                "principalId": "g_ADA",
                "policyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Action": "execute-api:Invoke",
                            "Effect": "Allow",
                            "Resource": "arn:aws:execute-api:*",
                        }
                    ],
                },
                "context": {"userId": "g_ADA", "name": "ada", "room": room},
            }
        return {"statusCode": 200, "body": json.dumps({"type": "error", "code": "unknown_action"})}


def test_a_ping_over_a_websocket_is_answered_by_api_gateway_and_dynamodb_with_no_invocation(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(call_counter, "ENABLED", True)
    call_counter.install()  # counts every botocore call of the default session's clients from now on
    functions = Functions()
    room, pings = f"ws-{ulid.new().lower()}", 5
    newest = ulid.new()
    _write(dynamodb, room, newest)

    async def scenario() -> list[Any]:
        api = WebSocketApi(
            TEMPLATE,
            functions,  # type: ignore[arg-type]
            region=REGION,
            api_id=f"websocketapi-{REGION}",
            domain="127.0.0.1",
            stage={"StageName": "prod"},
        )
        app = web.Application()
        api.add_routes(app)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            async with websockets.connect(f"ws://127.0.0.1:{server.port}/prod?room={room}&token=t") as socket:
                call_counter.counts(reset=True)  # from here on: the heartbeats only
                before = list(functions.invoked)
                answers = []
                for _ in range(pings):
                    await socket.send(json.dumps({"action": "ping"}))
                    answers.append(json.loads(await asyncio.wait_for(socket.recv(), 10)))
                assert functions.invoked == before  # no function ran for any ping
                return [answers, call_counter.counts(reset=True)]
        finally:
            await server.close()

    answers, counts = asyncio.run(scenario())
    assert answers == [{"type": "pong", "latest": newest, "region": REGION}] * pings
    # each ping: a message in, a message out, one Query; as AWS bills it
    assert counts == {"apigateway.WebSocketMessage": 2 * pings, "dynamodb.Query": pings}


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"a": "$input.json(\'$\')"}', "only"),
        ('{"a": "$util.escapeJavaScript($x)"}', "only"),
        ('{"a": "${context.authorizer.room}"}', "only"),
        ('#set($x = 1){"a": "$x"}', "directives"),
        ('{"a": "$context.identity.sourceIp"}', "not played"),
        ('{"a": "$context.authorizer"}', "not played"),
        ('{"a": "$input.path(\'$..id\')"}', "only"),
    ],
)
def test_a_mapping_template_beyond_the_played_subset_is_refused_when_the_template_is_read(
    text: str, why: str
) -> None:
    with pytest.raises(Unresolvable, match=why):
        MappingTemplate.parse("Ping", text)


def test_a_mapping_template_renders_the_authorizers_context_the_request_context_and_the_body() -> None:
    template = MappingTemplate.parse(
        "Ping",
        "$context.connectionId $context.authorizer.room $context.authorizer.count "
        "$input.path('$.Items[0].id.S') $input.path('$.Items[1].id.S') $input.path('$.Count')",
    )
    body = {"Items": [{"id": {"S": "01A"}}], "Count": 1}
    rendered = template.render({"connectionId": "c1", "authorizer": {"room": "lobby", "count": 2}}, body)
    assert rendered == "c1 lobby 2 01A  1"  # a missing value is the empty string


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


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (
            {
                "IntegrationUri": {
                    "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:sqs:action/SendMessage"
                }
            },
            "DynamoDB",
        ),
        ({"IntegrationMethod": "GET"}, "POST"),
        ({"IntegrationResponseSelectionExpression": "$integration.response.statuscode"}, "fixes"),
        ({"RequestTemplates": {"$default": '{"TableName": "$stageVariables.table"}'}}, "only"),
    ],
)
def test_an_aws_integration_the_local_stack_cannot_play_is_refused_when_the_template_is_read(
    change: dict[str, Any], why: str
) -> None:
    props = {**TEMPLATE.raw["Resources"]["PingIntegration"]["Properties"], **change}
    with pytest.raises(Unresolvable, match=why):
        AwsIntegration.of("Ping", props, [])


def test_the_integration_response_whose_key_matches_the_status_answers_else_the_default() -> None:
    keys = ["$default", "/4\\d\\d/", "/2\\d\\d/"]
    assert select_response(200, keys) == "/2\\d\\d/"
    assert select_response(404, keys) == "/4\\d\\d/"
    assert select_response(500, keys) == "$default"
    assert select_response(500, ["/2\\d\\d/"]) is None
    responses = Responses.of(
        "Ping",
        [
            {"IntegrationResponseKey": "/2\\d\\d/", "ResponseTemplates": {"$default": "ok"}},
            {"IntegrationResponseKey": "$default", "ResponseTemplates": {"$default": "failed"}},
        ],
    )
    assert [responses.answer(status, {}) for status in (200, 204, 400, 500)] == [
        "ok",
        "ok",
        "failed",
        "failed",
    ]

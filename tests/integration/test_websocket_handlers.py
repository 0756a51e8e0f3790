"""The WebSocket handlers with real boto3 calls against moto, events as API Gateway sends them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from chat import ulid
from chat.handlers import ws_connect, ws_default, ws_disconnect, ws_send
from localcloud.apigateway.events import new_connection_id
from localcloud.lambda_.context import LambdaContext
from tests.integration.helpers import ADA, frame_of, send_frame, ws


def stored(aws_endpoint: str, region: str, table: str, room: str) -> list[dict[str, Any]]:
    client = boto3.client("dynamodb", region_name=region, endpoint_url=aws_endpoint)
    items: list[dict[str, Any]] = client.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"room#{room}"}},
    )["Items"]
    return items


def test_connect_registers_the_connection_in_its_room_under_the_authorizers_user(
    in_region: Callable[..., None], context: LambdaContext, aws_endpoint: str, tables: dict[str, Any]
) -> None:
    in_region("us-east-1")
    connection_id = new_connection_id()
    response = ws_connect.handler(
        ws("$connect", connection_id, query={"room": "ws-lobby", "author": "mallory"}), context
    )
    assert response["statusCode"] == 200
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=aws_endpoint)
    item = client.get_item(
        TableName=tables["us-east-1"]["connections"], Key={"connectionId": {"S": connection_id}}
    )["Item"]
    assert item["room"]["S"] == "ws-lobby"
    assert item["userId"]["S"] == ADA["userId"]  # the authorizer's, never the query's "author"
    assert int(item["expiresAt"]["N"]) > 0

    ws_disconnect.handler(ws("$disconnect", connection_id), context)
    assert "Item" not in client.get_item(
        TableName=tables["us-east-1"]["connections"], Key={"connectionId": {"S": connection_id}}
    )


@pytest.mark.parametrize(
    ("query", "code"),
    [
        (None, "missing_field"),
        ({"author": "a"}, "missing_field"),
        ({"room": "Bad Room"}, "invalid_room"),
    ],
)
def test_connect_without_a_valid_room_is_refused(
    in_region: Callable[..., None], context: LambdaContext, query: dict[str, str] | None, code: str
) -> None:
    in_region("us-east-1")
    response = ws_connect.handler(ws("$connect", new_connection_id(), query=query), context)
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["error"]["code"] == code


def test_send_acks_and_stores_the_message_with_its_region_and_the_sessions_author(
    in_region: Callable[..., None], context: LambdaContext, aws_endpoint: str, tables: dict[str, Any]
) -> None:
    in_region("eu-west-2")
    message_id = ulid.new()
    ack = frame_of(
        ws_send.handler(
            send_frame(
                "c1", {"room": "ws-send", "id": message_id, "author": "mallory", "text": "<b>hello</b>"}
            ),
            context,
        )
    )
    assert ack == {"type": "ack", "id": message_id, "acceptedRegion": "eu-west-2"}
    (item,) = stored(aws_endpoint, "eu-west-2", tables["eu-west-2"]["messages"], "ws-send")
    assert item["text"]["S"] == "<b>hello</b>"
    assert item["transport"]["S"] == "websocket"
    assert item["acceptedRegion"]["S"] == "eu-west-2"
    assert (item["author"]["S"], item["authorId"]["S"]) == (ADA["name"], ADA["userId"])


def test_a_duplicate_send_is_acknowledged_and_stored_once(
    in_region: Callable[..., None], context: LambdaContext, aws_endpoint: str, tables: dict[str, Any]
) -> None:
    in_region("us-east-1")
    message = {"room": "ws-dup", "id": ulid.new(), "author": "ada", "text": "once"}
    first = frame_of(ws_send.handler(send_frame("c1", message), context))
    again = frame_of(ws_send.handler(send_frame("c1", {**message, "text": "changed on retry"}), context))
    assert first == again
    (item,) = stored(aws_endpoint, "us-east-1", tables["us-east-1"]["messages"], "ws-dup")
    assert item["text"]["S"] == "once"


def test_the_same_message_sent_through_either_region_gets_the_same_key(
    in_region: Callable[..., None], context: LambdaContext, aws_endpoint: str, tables: dict[str, Any]
) -> None:
    message = {"room": "ws-both", "id": ulid.new(), "author": "ada", "text": "hi"}
    keys = []
    for region in ("us-east-1", "eu-west-2"):
        in_region(region)
        assert frame_of(ws_send.handler(send_frame("c1", message), context))["type"] == "ack"
        (item,) = stored(aws_endpoint, region, tables[region]["messages"], "ws-both")
        keys.append((item["pk"]["S"], item["sk"]["S"]))
    assert keys[0] == keys[1] == ("room#ws-both", f"{message['id']}#{ADA['userId']}")


BAD_FRAMES = [
    ("{not json", "malformed_json"),
    (json.dumps({"action": "sendMessage", "room": "ws-bad", "author": "a", "text": "t"}), "missing_field"),
    (
        json.dumps({"action": "sendMessage", "room": "ws-bad", "id": "ID", "author": "a", "text": "t"}),
        "invalid_id",
    ),
    (
        json.dumps(
            {"action": "sendMessage", "room": "ws-bad", "id": ulid.new(0), "author": "a", "text": "t"}
        ),
        "id_out_of_range",
    ),
    (
        json.dumps({"action": "sendMessage", "room": "WS BAD", "id": "@", "author": "a", "text": "t"}),
        "invalid_room",
    ),
    (
        json.dumps({"action": "sendMessage", "room": "ws-bad", "id": "@", "author": "a", "text": "  "}),
        "invalid_text",
    ),
    (
        json.dumps({"action": "sendMessage", "room": "ws-bad", "id": "@", "author": "a", "text": "x" * 4001}),
        "text_too_long",
    ),
    (json.dumps(["sendMessage"]), "invalid_message"),
]


@pytest.mark.parametrize(("body", "code"), BAD_FRAMES)
def test_bad_frames_get_an_error_frame_and_write_nothing(
    in_region: Callable[..., None],
    context: LambdaContext,
    aws_endpoint: str,
    tables: dict[str, Any],
    body: str,
    code: str,
) -> None:
    in_region("us-east-1")
    message_id = ulid.new()
    body = body.replace('"@"', json.dumps(message_id))
    error = frame_of(ws_send.handler(send_frame("c1", body), context))
    assert error["type"] == "error"
    assert error["code"] == code
    assert error["message"]
    if '"id"' in body and code not in {"malformed_json", "invalid_message"}:
        assert error["id"] == json.loads(body)["id"]
    assert stored(aws_endpoint, "us-east-1", tables["us-east-1"]["messages"], "ws-bad") == []


@pytest.mark.parametrize(
    "body", ['{"action": "shout", "id": "X1"}', '{"text": "no action"}', "plain text", ""]
)
def test_an_unknown_action_gets_an_error_frame(
    in_region: Callable[..., None], context: LambdaContext, body: str
) -> None:
    in_region("us-east-1")
    error = frame_of(ws_default.handler(ws("$default", "c1", body=body), context))
    assert error["type"] == "error"
    assert error["code"] in {"unknown_action", "malformed_json"}
    if "X1" in body:
        assert error["id"] == "X1"


def test_a_store_failure_becomes_an_error_frame_never_an_exception(
    in_region: Callable[..., None], context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_region("us-east-1")
    monkeypatch.setenv("MESSAGES_TABLE", "no-such-table")
    from chat import composition

    composition.reset()
    message_id = ulid.new()
    error = frame_of(
        ws_send.handler(
            send_frame("c1", {"room": "r", "id": message_id, "author": "a", "text": "t"}), context
        )
    )
    assert error == {
        "type": "error",
        "id": message_id,
        "code": "unavailable",
        "message": "this region could not reach its storage; retry, here or in another region",
    }


def test_a_connect_the_store_cannot_take_is_refused_as_unavailable(
    in_region: Callable[..., None], context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_region("us-east-1")
    monkeypatch.setenv("CONNECTIONS_TABLE", "no-such-table")
    from chat import composition

    composition.reset()
    response = ws_connect.handler(
        ws("$connect", new_connection_id(), query={"room": "r", "author": "ada"}), context
    )
    assert response["statusCode"] == 503
    assert json.loads(response["body"])["error"]["code"] == "unavailable"

"""Editing and deleting one's own message through the handlers, against moto: the HTTP routes,
the WebSocket actions, and each region's stream handler pushing every change and repairing what
last writer wins would otherwise keep (an edit replicated over a delete)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from chat import ulid
from chat.handlers import fanout_stream, http_api, ws_connect, ws_send
from localcloud.apigateway.events import new_connection_id
from localcloud.dynamodb.streams import lambda_record
from localcloud.lambda_.context import LambdaContext
from tests.integration.conftest import ManagementApiDouble
from tests.integration.helpers import ADA, frame_of, http, stream_event, ws

BO = {"userId": "g_BO00000000000000000000000", "name": "Bo"}
ONE = "/rooms/{room}/messages/{id}"


def call(
    method: str, room: str, context: LambdaContext, token: str, *, id: str | None = None, body: Any = None
) -> tuple[int, dict[str, Any]]:
    path, route = f"/rooms/{room}/messages", "/rooms/{room}/messages"
    params = {"room": room}
    if id is not None:
        path, route, params = f"{path}/{id}", ONE, {"room": room, "id": id}
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    event = http(method, path, route=f"{method} {route}", params=params, body=raw, token=token)
    response = http_api.handler(event, context)
    return response["statusCode"], json.loads(response["body"])


@pytest.fixture
def ada(token_for: Callable[..., str]) -> str:
    return token_for(ADA)


@pytest.fixture
def bo(token_for: Callable[..., str]) -> str:
    return token_for(BO)


def table(aws_endpoint: str, region: str) -> Any:
    return boto3.client("dynamodb", region_name=region, endpoint_url=aws_endpoint)


def stored_item(aws_endpoint: str, tables: dict[str, Any], region: str, room: str, id: str) -> dict[str, Any]:
    key = {"pk": {"S": f"room#{room}"}, "sk": {"S": f"{id}#{ADA['userId']}"}}
    item: dict[str, Any] = table(aws_endpoint, region).get_item(
        TableName=tables[region]["messages"], Key=key, ConsistentRead=True
    )["Item"]
    return item


def test_an_author_edits_then_deletes_a_message_and_history_shows_each_state(
    in_region: Callable[..., None],
    context: LambdaContext,
    ada: str,
    aws_endpoint: str,
    tables: dict[str, Any],
) -> None:
    in_region("us-east-1")
    room, id = "edit-http", ulid.new()
    assert call("POST", room, context, ada, body={"id": id, "text": "helo"})[0] == 201

    status, edited = call("PATCH", room, context, ada, id=id, body={"text": "  hello  "})
    assert status == 200
    assert (edited["text"], edited["version"], edited["deleted"]) == ("hello", 2, False)
    assert edited["editedAt"] is not None
    assert call("GET", room, context, ada)[1]["messages"] == [edited]

    # the same text again: 200, and nothing changes
    assert call("PATCH", room, context, ada, id=id, body={"text": "hello"}) == (200, edited)

    status, gone = call("DELETE", room, context, ada, id=id)
    assert status == 200
    assert gone == {**edited, "text": None, "editedAt": None, "version": 3, "deleted": True}
    assert call("GET", room, context, ada)[1]["messages"] == [gone]
    assert "text" not in stored_item(aws_endpoint, tables, "us-east-1", room, id)  # gone from storage

    # deleting again is 200; editing a deleted message is refused
    assert call("DELETE", room, context, ada, id=id) == (200, gone)
    status, body = call("PATCH", room, context, ada, id=id, body={"text": "back"})
    assert (status, body["error"]["code"]) == (409, "message_deleted")
    assert call("GET", room, context, ada)[1]["messages"] == [gone]


def test_nobody_can_edit_or_delete_a_message_they_did_not_write(
    in_region: Callable[..., None], context: LambdaContext, ada: str, bo: str
) -> None:
    in_region("us-east-1")
    room, id = "edit-theirs", ulid.new()
    _, posted = call("POST", room, context, ada, body={"id": id, "text": "mine"})

    for method, body in (("PATCH", {"text": "yours now"}), ("DELETE", None)):
        status, refused = call(method, room, context, bo, id=id, body=body)
        assert (status, refused["error"]["code"]) == (404, "not_found")
    status, refused = call("PATCH", room, context, ada, id=ulid.new(), body={"text": "x"})
    assert (status, refused["error"]["code"]) == (404, "not_found")
    assert call("GET", room, context, ada)[1]["messages"] == [posted]


@pytest.mark.parametrize(
    ("id", "body", "code"),
    [
        ("not-a-ulid", {"text": "x"}, "invalid_id"),
        (None, {"text": ""}, "invalid_text"),
        (None, {"text": "x" * 4001}, "text_too_long"),
        (None, {"text": "a\u0000b"}, "invalid_text"),
        (None, {}, "missing_field"),
        (None, ["text"], "invalid_message"),
        (None, b"{oops", "malformed_json"),
    ],
)
def test_a_bad_edit_gets_400_and_changes_nothing(
    in_region: Callable[..., None], context: LambdaContext, ada: str, id: str | None, body: Any, code: str
) -> None:
    in_region("us-east-1")
    room, posted_id = "edit-bad", ulid.new()
    _, posted = call("POST", room, context, ada, body={"id": posted_id, "text": "fine"})
    status, refused = call("PATCH", room, context, ada, id=id or posted_id, body=body)
    assert (status, refused["error"]["code"]) == (400, code)
    assert posted in call("GET", room, context, ada)[1]["messages"]


def test_an_edit_without_a_session_is_401(in_region: Callable[..., None], context: LambdaContext) -> None:
    in_region("us-east-1")
    status, body = call("PATCH", "edit-anon", context, "junk", id=ulid.new(), body={"text": "x"})
    assert (status, body["error"]["code"]) == (401, "unauthorized")


def action(
    route: str, connection_id: str, body: dict[str, Any], user: dict[str, str] = ADA
) -> dict[str, Any]:
    return ws(route, connection_id, body=json.dumps({"action": route, **body}), user=user)


def test_websocket_edits_and_deletes_are_acked_or_refused_with_an_error_frame(
    in_region: Callable[..., None], context: LambdaContext
) -> None:
    in_region("eu-west-2")
    room, id, connection = "edit-ws", ulid.new(), new_connection_id()
    frame_of(
        ws_send.handler(action("sendMessage", connection, {"room": room, "id": id, "text": "hi"}), context)
    )

    ack = frame_of(
        ws_send.handler(action("editMessage", connection, {"room": room, "id": id, "text": "hey"}), context)
    )
    assert ack == {"type": "ack", "id": id, "acceptedRegion": "eu-west-2"}
    theirs = frame_of(
        ws_send.handler(action("deleteMessage", connection, {"room": room, "id": id}, BO), context)
    )
    assert (theirs["type"], theirs["id"], theirs["code"]) == ("error", id, "not_found")
    ack = frame_of(ws_send.handler(action("deleteMessage", connection, {"room": room, "id": id}), context))
    assert ack == {"type": "ack", "id": id, "acceptedRegion": "eu-west-2"}
    refused = frame_of(
        ws_send.handler(action("editMessage", connection, {"room": room, "id": id, "text": "undo"}), context)
    )
    assert (refused["type"], refused["id"], refused["code"]) == ("error", id, "message_deleted")
    missing = frame_of(ws_send.handler(action("deleteMessage", connection, {"id": id}), context))
    assert (missing["type"], missing["code"]) == ("error", "missing_field")


# ------------------------------------------------------------------ the stream handler


def records_of(aws_endpoint: str, region: str, stream_arn: str, room: str) -> list[dict[str, Any]]:
    """The room's message records and its tombstones' records, oldest first."""
    streams = boto3.client("dynamodbstreams", region_name=region, endpoint_url=aws_endpoint)
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records: list[Any] = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    ours = (f"room#{room}", f"deleted#{room}#")
    return [
        lambda_record(r, region, stream_arn)
        for r in records
        if r["dynamodb"]["Keys"]["pk"]["S"].startswith(ours)
    ]


class Stream:
    """A region's stream, handed to its fan-out a batch at a time, each record once."""

    def __init__(self, aws_endpoint: str, tables: dict[str, Any], region: str, room: str) -> None:
        self.args = (aws_endpoint, region, tables[region]["stream"], room)
        self.seen = 0

    def run(self) -> dict[str, Any]:
        records = records_of(*self.args)[self.seen :]
        self.seen += len(records)
        context = LambdaContext("FanoutFunction", self.args[1], 1769, 60)
        return fanout_stream.handler(stream_event(records), context)


def listen(room: str, context: LambdaContext) -> str:
    connection_id = new_connection_id()
    assert (
        ws_connect.handler(ws("$connect", connection_id, query={"room": room}), context)["statusCode"] == 200
    )
    return connection_id


def test_every_change_reaches_the_room_as_a_message_frame_with_the_new_state(
    in_region: Callable[..., None],
    context: LambdaContext,
    ada: str,
    aws_endpoint: str,
    tables: dict[str, Any],
    management_api: ManagementApiDouble,
) -> None:
    in_region("us-east-1", management_api.url)
    room, id = "edit-fanout", ulid.new()
    listener = listen(room, context)
    stream = Stream(aws_endpoint, tables, "us-east-1", room)
    call("POST", room, context, ada, body={"id": id, "text": "one"})
    call("PATCH", room, context, ada, id=id, body={"text": "two"})
    call("PATCH", room, context, ada, id=id, body={"text": "two"})  # no change: no write, no frame
    call("DELETE", room, context, ada, id=id)

    assert stream.run() == {"batchItemFailures": []}

    frames = [f["message"] for f in management_api.frames_for(listener)]
    assert [(m["version"], m["text"], m["deleted"]) for m in frames] == [
        (1, "one", False),
        (2, "two", False),
        (3, None, True),
    ]
    # the delete this region accepted left a tombstone: an item no edit ever writes
    tombstone = table(aws_endpoint, "us-east-1").get_item(
        TableName=tables["us-east-1"]["messages"],
        Key={"pk": {"S": f"deleted#{room}#{id}#{ADA['userId']}"}, "sk": {"S": "deleted"}},
    )
    assert "Item" in tombstone


def test_an_edit_replicated_over_a_delete_is_undone_by_the_stream_handler_and_never_shown(
    in_region: Callable[..., None],
    context: LambdaContext,
    ada: str,
    aws_endpoint: str,
    tables: dict[str, Any],
    management_api: ManagementApiDouble,
) -> None:
    # Given a message deleted in eu-west-2 while an edit of it was accepted in us-east-1
    in_region("us-east-1")
    room, id = "edit-conflict", ulid.new()
    call("POST", room, context, ada, body={"id": id, "text": "secret"})
    _, edit = call("PATCH", room, context, ada, id=id, body={"text": "secret, edited"})
    in_region("eu-west-2", management_api.url)
    listener = listen(room, context)
    stream = Stream(aws_endpoint, tables, "eu-west-2", room)
    original = stored_item(aws_endpoint, tables, "us-east-1", room, id)
    eu = table(aws_endpoint, "eu-west-2")
    eu.put_item(
        TableName=tables["eu-west-2"]["messages"],
        Item={**original, "version": {"N": "1"}, "text": {"S": "secret"}},
    )
    call("DELETE", room, context, ada, id=id)
    stream.run()
    assert [f["message"]["deleted"] for f in management_api.frames_for(listener)] == [False, True]

    # When replication brings the edit (the later write, so last writer wins keeps it)
    eu.put_item(
        TableName=tables["eu-west-2"]["messages"],
        Item=stored_item(aws_endpoint, tables, "us-east-1", room, id),
    )
    assert stored_item(aws_endpoint, tables, "eu-west-2", room, id)["text"]["S"] == edit["text"]
    assert stream.run() == {"batchItemFailures": []}

    # Then eu-west-2's stream handler writes the deleted state back: no text, and no frame of the edit
    item = stored_item(aws_endpoint, tables, "eu-west-2", room, id)
    assert "text" not in item
    assert item["deleted"] == {"BOOL": True}
    stream.run()  # the repair's own write: pushed again (a state the room has: clients keep one)
    frames = [f["message"] for f in management_api.frames_for(listener)]
    assert [m["text"] for m in frames if not m["deleted"]] == ["secret"]
    assert frames[-1]["deleted"] is True


def test_a_tombstone_arriving_in_a_region_deletes_its_copy_of_the_message(
    in_region: Callable[..., None],
    context: LambdaContext,
    ada: str,
    aws_endpoint: str,
    tables: dict[str, Any],
    management_api: ManagementApiDouble,
) -> None:
    # Given a message whose copy in us-east-1 holds its edited text
    in_region("us-east-1", management_api.url)
    room, id = "edit-tombstone", ulid.new()
    call("POST", room, context, ada, body={"id": id, "text": "first"})
    call("PATCH", room, context, ada, id=id, body={"text": "second"})
    listener = listen(room, context)
    stream = Stream(aws_endpoint, tables, "us-east-1", room)
    stream.run()
    # When the tombstone of a delete accepted in eu-west-2 arrives (replicated)
    table(aws_endpoint, "us-east-1").put_item(
        TableName=tables["us-east-1"]["messages"],
        Item={
            "pk": {"S": f"deleted#{room}#{id}#{ADA['userId']}"},
            "sk": {"S": "deleted"},
            "room": {"S": room},
            "id": {"S": id},
            "authorId": {"S": ADA["userId"]},
            "acceptedRegion": {"S": "eu-west-2"},
            "expiresAt": {"N": "1900000000"},
        },
    )
    assert stream.run() == {"batchItemFailures": []}
    stream.run()  # the delete it made, pushed
    # Then us-east-1 deleted its copy by its own write, and the room was told
    item = stored_item(aws_endpoint, tables, "us-east-1", room, id)
    assert ("text" in item, item["deleted"]) == (False, {"BOOL": True})
    assert management_api.frames_for(listener)[-1]["message"]["deleted"] is True

"""Presence and typing through the real handlers and adapters against moto: memberships written
by a user's first connection to a room and deleted by their last, `GET /rooms/{room}/presence`,
the typing route's one write per 2 s, and the stream handler turning those writes (as the
template's filters pass them) into `enter`, `leave` and `typing` frames."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3

from chat import ulid
from chat.handlers import fanout_stream, http_api, ws_connect, ws_disconnect, ws_send
from localcloud.apigateway.events import new_connection_id
from localcloud.dynamodb.streams import lambda_record
from localcloud.lambda_.context import LambdaContext
from localcloud.lambda_.event_source_mapping import passes_filters
from stack_definition.cloudformation import load_raw
from tests.integration.conftest import ManagementApiDouble
from tests.integration.helpers import http, stream_event, ws

FANOUT_FILTERS = [
    f["Pattern"]
    for f in load_raw()["Resources"]["FanoutStreamMapping"]["Properties"]["FilterCriteria"]["Filters"]
]


def person(name: str) -> dict[str, str]:
    return {"userId": f"g_{name.upper()}{ulid.new()[:20]}", "name": name}


def connect(room: str, user: dict[str, str], context: LambdaContext) -> str:
    connection_id = new_connection_id()
    answer = ws_connect.handler(ws("$connect", connection_id, query={"room": room}, user=user), context)
    assert answer["statusCode"] == 200, answer
    return connection_id


def disconnect(connection_id: str, context: LambdaContext) -> None:
    ws_disconnect.handler(ws("$disconnect", connection_id), context)


def presence(room: str, token: str, context: LambdaContext) -> dict[str, Any]:
    event = http(
        "GET",
        f"/rooms/{room}/presence",
        route="GET /rooms/{room}/presence",
        params={"room": room},
        token=token,
    )
    response = http_api.handler(event, context)
    assert response["statusCode"] == 200, response
    body: dict[str, Any] = json.loads(response["body"])
    return body


def typing(
    connection_id: str,
    user: dict[str, str],
    body: dict[str, Any] | str,
    context: LambdaContext,
    *,
    in_room: str,
) -> Any:
    """A typing frame on a connection to `in_room` (the room its authorizer validated)."""
    text = body if isinstance(body, str) else json.dumps({"action": "typing", **body})
    return ws_send.handler(ws("typing", connection_id, body=text, user={**user, "room": in_room}), context)


def passed_records(aws_endpoint: str, stream_arn: str, room: str) -> list[dict[str, Any]]:
    """The room's presence and typing records of the stream, as the template's filters pass them."""
    streams = boto3.client("dynamodbstreams", region_name="us-east-1", endpoint_url=aws_endpoint)
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records: list[dict[str, Any]] = []
    while iterator:
        page = streams.get_records(ShardIterator=iterator, Limit=1000)
        records += page["Records"]
        iterator = page.get("NextShardIterator") if page["Records"] else None

    def of_room(r: dict[str, Any]) -> bool:
        image = r["dynamodb"].get("NewImage") or r["dynamodb"].get("OldImage") or {}
        return bool(image.get("room", {}).get("S") == room)

    return [
        record
        for r in records
        if of_room(r) and passes_filters(record := lambda_record(r, "us-east-1", stream_arn), FANOUT_FILTERS)
    ]


def test_a_room_lists_each_user_once_however_many_tabs_and_forgets_them_with_their_last(
    in_region: Callable[..., None], context: LambdaContext, token_for: Callable[..., str]
) -> None:
    in_region("us-east-1")
    room = f"pres-{ulid.new().lower()[:10]}"
    ada, bob = person("Ada"), person("bob")
    ada_tabs = [connect(room, ada, context), connect(room, ada, context)]
    bob_tab = connect(room, bob, context)
    token = token_for(ada)

    seen = presence(room, token, context)
    assert seen == {
        "count": 2,
        "members": [{"id": ada["userId"], "name": "Ada"}, {"id": bob["userId"], "name": "bob"}],
        "region": "us-east-1",
    }
    disconnect(ada_tabs[0], context)  # a second tab closing: still there
    assert presence(room, token, context)["count"] == 2
    disconnect(ada_tabs[1], context)
    assert presence(room, token, context)["members"] == [{"id": bob["userId"], "name": "bob"}]
    disconnect(bob_tab, context)
    assert presence(room, token, context) == {"count": 0, "members": [], "region": "us-east-1"}


def test_presence_needs_a_session_and_a_valid_room(
    in_region: Callable[..., None], context: LambdaContext, token_for: Callable[..., str]
) -> None:
    in_region("us-east-1")
    anonymous = http(
        "GET", "/rooms/lobby/presence", route="GET /rooms/{room}/presence", params={"room": "lobby"}
    )
    assert http_api.handler(anonymous, context)["statusCode"] == 401
    bad = http(
        "GET",
        "/rooms/Bad_Room/presence",
        route="GET /rooms/{room}/presence",
        params={"room": "Bad_Room"},
        token=token_for(),
    )
    answer = http_api.handler(bad, context)
    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["error"]["code"] == "invalid_room"


def test_typing_is_never_acknowledged_crosses_at_most_once_per_two_seconds_and_refuses_bad_frames(
    in_region: Callable[..., None], context: LambdaContext, aws_endpoint: str, tables: dict[str, Any]
) -> None:
    in_region("us-east-1")
    room = f"typ-{ulid.new().lower()[:10]}"
    ada = person("Ada")
    connection = connect(room, ada, context)
    answers = [typing(connection, ada, {"room": room}, context, in_room=room) for _ in range(5)]
    assert answers == [{"statusCode": 200}] * 5  # no body: no frame back

    def typed(in_room: str) -> list[dict[str, Any]]:
        records = passed_records(aws_endpoint, tables["us-east-1"]["stream"], in_room)
        return [r for r in records if r["dynamodb"]["Keys"]["pk"]["S"].startswith("typing#")]

    assert len(typed(room)) == 1  # five within 2 s: one write, one stream record
    # her tab in another room, within the same 2 s: dropped too (one typing event per user per 2 s)
    other_room = f"{room}-b"
    other_tab = connect(other_room, ada, context)
    assert typing(other_tab, ada, {"room": other_room}, context, in_room=other_room) == {"statusCode": 200}
    assert typed(other_room) == []
    # typing into a room the connection is not in: dropped quietly (it would show Bo typing
    # where he is not)
    bo = person("Bo")
    bo_connection = connect(room, bo, context)
    elsewhere = f"{room}-c"
    assert typing(bo_connection, bo, {"room": elsewhere}, context, in_room=room) == {"statusCode": 200}
    assert typed(elsewhere) == []

    bad_room = typing(connection, ada, {"room": "NOPE!"}, context, in_room=room)
    assert json.loads(bad_room["body"])["code"] == "invalid_room"
    no_room = typing(connection, ada, {}, context, in_room=room)
    assert json.loads(no_room["body"])["code"] == "missing_field"
    not_json = typing(connection, ada, "{typing", context, in_room=room)
    assert json.loads(not_json["body"])["type"] == "error"


def test_the_stream_pushes_enter_leave_and_typing_to_the_rooms_other_connections(
    in_region: Callable[..., None],
    context: LambdaContext,
    aws_endpoint: str,
    tables: dict[str, Any],
    management_api: ManagementApiDouble,
) -> None:
    in_region("us-east-1", management_api.url)
    room = f"pst-{ulid.new().lower()[:10]}"
    ada, bob = person("Ada"), person("Bob")
    done: set[str] = set()

    def stream_delivers() -> None:
        """The records written since the last call, to the stream handler (as Lambda would)."""
        records = passed_records(aws_endpoint, tables["us-east-1"]["stream"], room)
        new = [r for r in records if r["dynamodb"]["SequenceNumber"] not in done]
        done.update(r["dynamodb"]["SequenceNumber"] for r in new)
        fanout = LambdaContext("FanoutFunction", "us-east-1", 1769, 60)
        assert fanout_stream.handler(stream_event(new), fanout) == {"batchItemFailures": []}

    listener = connect(room, bob, context)
    stream_delivers()
    first = connect(room, ada, context)
    stream_delivers()
    second = connect(room, ada, context)  # a second tab: no membership write, no frame
    typing(first, ada, {"room": room}, context, in_room=room)
    stream_delivers()
    disconnect(first, context)
    stream_delivers()
    disconnect(second, context)
    stream_delivers()

    ada_id = {"id": ada["userId"], "name": "Ada"}
    assert management_api.frames_for(first) == []  # neither its own `enter` nor its own typing
    assert management_api.frames_for(second) == [{"type": "typing", "user": ada_id}]
    assert management_api.frames_for(listener) == [
        {"type": "presence", "event": "enter", "user": ada_id, "count": 2},
        {"type": "typing", "user": ada_id},
        {"type": "presence", "event": "leave", "user": ada_id, "count": 1},
    ]

"""The fan-out handler fed with real stream records read from moto, posting to a management
API double that answers 410 for the connections that are gone; an invocation whose time runs
out queues (in moto's SQS) only the connections it did not post."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from chat import composition, ulid
from chat.fanout_pages import Page
from chat.handlers import fanout_stream, fanout_worker, ws_connect, ws_send
from chat.model import iso_time, user_tag
from chat.push import POSTING_MARGIN_SECONDS
from localcloud.apigateway.events import new_connection_id
from localcloud.aws import provision
from localcloud.dynamodb.streams import lambda_record
from localcloud.lambda_.context import LambdaContext
from localcloud.lambda_.queue_mapping import QueueSource
from stack_definition.cloudformation import load_raw
from tests.integration.conftest import ManagementApiDouble
from tests.integration.helpers import frame_of, send_frame, stream_event, ws


def stream_records(aws_endpoint: str, region: str, stream_arn: str, room: str) -> list[dict[str, Any]]:
    streams = boto3.client("dynamodbstreams", region_name=region, endpoint_url=aws_endpoint)
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
    return [
        lambda_record(r, region, stream_arn)
        for r in records
        if r["dynamodb"]["Keys"]["pk"]["S"] == f"room#{room}"
    ]


def invocation(function: str) -> LambdaContext:
    """A context of its own for each fan-out invocation, with the function's timeout from the
    template, as Lambda gives it: the fan-out stops starting posts when its time runs short, so
    a context shared with the rest of a test would leave it less time than it has."""
    timeout = load_raw()["Resources"][function]["Properties"]["Timeout"]
    return LambdaContext(function, "us-east-1", 1769, timeout)


def connect(room: str, context: LambdaContext) -> str:
    connection_id = new_connection_id()
    assert (
        ws_connect.handler(ws("$connect", connection_id, query={"room": room}), context)["statusCode"] == 200
    )
    return connection_id


def test_every_connection_in_the_room_gets_the_message_and_gone_ones_are_removed(
    in_region: Callable[..., None],
    context: LambdaContext,
    aws_endpoint: str,
    tables: dict[str, Any],
    management_api: ManagementApiDouble,
) -> None:
    """Given a room whose gone connections answer 410, some connected a minute ago and one a moment
    ago (still in its `$connect`, as far as a 410 can tell), when the fan-out posts to the room,
    then everyone else gets every message, the old gone ones are forgotten and the young one is
    kept (its client is about to be there)."""
    in_region("us-east-1", management_api.url)
    room = "fan-room"
    members = [connect(room, context) for _ in range(30)]
    outsider = connect("fan-elsewhere", context)
    gone = set(members[::7])
    young = members[1]
    management_api.gone.update(gone | {young})
    dynamodb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=aws_endpoint)
    a_minute_ago = iso_time(int((time.time() - 60) * 1000))
    for connection_id in gone:
        dynamodb.update_item(
            TableName=tables["us-east-1"]["connections"],
            Key={"connectionId": {"S": connection_id}},
            UpdateExpression="SET connectedAt = :then",
            ExpressionAttributeValues={":then": {"S": a_minute_ago}},
        )
    sent = [ulid.new() for _ in range(3)]
    for message_id in sent:
        frame_of(
            ws_send.handler(
                send_frame(members[0], {"room": room, "id": message_id, "author": "a", "text": "hello"}),
                context,
            )
        )

    response = fanout_stream.handler(
        stream_event(stream_records(aws_endpoint, "us-east-1", tables["us-east-1"]["stream"], room)),
        invocation("FanoutFunction"),
    )

    assert response == {"batchItemFailures": []}
    for member in members:
        frames = management_api.frames_for(member)
        if member in gone | {young}:
            assert frames == []
        else:
            assert [f["message"]["id"] for f in frames] == sent
            assert all(f["type"] == "message" and f["deliveredBy"] == "us-east-1" for f in frames)
    assert management_api.frames_for(outsider) == []
    remaining = {
        item["connectionId"]["S"]
        for item in dynamodb.scan(TableName=tables["us-east-1"]["connections"])["Items"]
    }
    assert not gone & remaining
    assert set(members) - gone <= remaining
    assert young in remaining


def test_a_replicated_message_is_pushed_with_the_region_that_accepted_it(
    in_region: Callable[..., None],
    context: LambdaContext,
    aws_endpoint: str,
    tables: dict[str, Any],
    management_api: ManagementApiDouble,
) -> None:
    in_region("eu-west-2", management_api.url)
    room = "fan-replicated"
    listener = connect(room, context)
    message_id = ulid.new()
    item = {
        "pk": {"S": f"room#{room}"},
        "sk": {"S": f"{message_id}#g_BO"},
        "id": {"S": message_id},
        "room": {"S": room},
        "author": {"S": "bo"},
        "authorId": {"S": "g_BO"},
        "text": {"S": "from the other side"},
        "sentAt": {"S": "2026-11-25T00:00:00.000Z"},
        "acceptedRegion": {"S": "us-east-1"},
        "transport": {"S": "websocket"},
        "expiresAt": {"N": "1"},
    }
    dynamodb = boto3.client("dynamodb", region_name="eu-west-2", endpoint_url=aws_endpoint)
    dynamodb.put_item(TableName=tables["eu-west-2"]["messages"], Item=item)  # as replication writes it

    fanout_stream.handler(
        stream_event(stream_records(aws_endpoint, "eu-west-2", tables["eu-west-2"]["stream"], room)),
        invocation("FanoutFunction"),
    )

    (frame,) = management_api.frames_for(listener)
    assert frame["message"]["acceptedRegion"] == "us-east-1"
    assert frame["deliveredBy"] == "eu-west-2"
    # an item stored without its author's tag and kind: both derived from authorId
    assert (frame["message"]["authorTag"], frame["message"]["authorKind"]) == (user_tag("g_BO"), "guest")


def test_throttled_posts_are_retried_and_a_failing_connection_blocks_nobody(
    in_region: Callable[..., None],
    context: LambdaContext,
    aws_endpoint: str,
    tables: dict[str, Any],
    queues: dict[str, dict[str, provision.QueueEndpoint]],
    management_api: ManagementApiDouble,
) -> None:
    in_region("us-east-1", management_api.url)
    queued_pages(queues, aws_endpoint)  # start from an empty queue
    room = "fan-faults"
    throttled, broken, fine = (connect(room, context) for _ in range(3))
    management_api.scripted[throttled] = [429, 429]  # then 200: retried with backoff
    management_api.scripted[broken] = [500] * 20  # fails every retry
    message_id = ulid.new()
    frame_of(
        ws_send.handler(
            send_frame(fine, {"room": room, "id": message_id, "author": "a", "text": "t"}), context
        )
    )

    response = fanout_stream.handler(
        stream_event(stream_records(aws_endpoint, "us-east-1", tables["us-east-1"]["stream"], room)),
        invocation("FanoutFunction"),
    )

    assert response == {"batchItemFailures": []}  # a failed post is logged, never a batch failure
    assert [f["message"]["id"] for f in management_api.frames_for(throttled)] == [message_id]
    assert management_api.attempts[throttled] == 3
    assert management_api.frames_for(broken) == []
    assert management_api.attempts[broken] == 4  # the pusher's attempts
    assert [f["message"]["id"] for f in management_api.frames_for(fine)] == [message_id]
    dynamodb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=aws_endpoint)
    kept = dynamodb.get_item(
        TableName=tables["us-east-1"]["connections"], Key={"connectionId": {"S": broken}}
    )
    assert "Item" in kept  # only a 410 removes a connection
    (page,) = queued_pages(queues, aws_endpoint)  # and the workers try it again, alone
    assert page.connections == (broken,)


class RunningOut(LambdaContext):
    """A Lambda context whose remaining time is plenty until the management API has been sent
    `attempts` posts, and under the fan-out's margin from then on: a clock that moves with the
    posts, so the test needs no sleeping and no slow machine."""

    def __init__(self, api: ManagementApiDouble, attempts: int) -> None:
        super().__init__("test-function", "us-east-1", 1769, 15)
        self._api = api
        self._attempts = attempts

    def get_remaining_time_in_millis(self) -> int:
        with self._api.lock:
            made = sum(self._api.attempts.values())
        return 15_000 if made < self._attempts else int(POSTING_MARGIN_SECONDS * 1000) - 1


def queued_pages(queues: dict[str, dict[str, provision.QueueEndpoint]], aws_endpoint: str) -> list[Page]:
    """Take every page from us-east-1's page queue (as the workers' mapping would)."""
    queue = queues["us-east-1"]["FanoutPageQueue"]
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=aws_endpoint)
    source = QueueSource(sqs, queue.url, queue.arn, "us-east-1")
    records = []
    while batch := source.receive(10, 0):
        records += batch
    source.delete(records)
    return [Page.decode(record["body"]) for record in records]


def test_a_room_posted_inline_whose_time_runs_out_queues_only_the_connections_not_posted(
    in_region: Callable[..., None],
    context: LambdaContext,
    aws_endpoint: str,
    tables: dict[str, Any],
    queues: dict[str, dict[str, provision.QueueEndpoint]],
    management_api: ManagementApiDouble,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a room of 8 posted inline, 2 posts at a time, and time for 3 posts
    in_region("us-east-1", management_api.url)
    monkeypatch.setenv("FANOUT_CONCURRENCY", "2")
    composition.reset()
    queued_pages(queues, aws_endpoint)  # start from an empty queue
    room = "fan-late"
    members = [connect(room, context) for _ in range(8)]
    message_id = ulid.new()
    frame_of(
        ws_send.handler(
            send_frame(members[0], {"room": room, "id": message_id, "author": "a", "text": "t"}), context
        )
    )
    records = stream_records(aws_endpoint, "us-east-1", tables["us-east-1"]["stream"], room)

    # When the stream handler runs out of time part way
    response = fanout_stream.handler(stream_event(records), RunningOut(management_api, 3))

    # Then the batch succeeds (a retry would post again to those already posted), and the one
    # page queued holds exactly the members that have not got the message
    assert response == {"batchItemFailures": []}
    posted = {m for m in members if management_api.frames_for(m)}
    assert 3 <= len(posted) < len(members)  # the 3 started, and any post in flight, finished
    (page,) = queued_pages(queues, aws_endpoint)
    assert sorted(page.connections) == sorted(set(members) - posted)

    # and once a worker has posted the page, every member has the message once
    assert fanout_worker.handler(page_record(page), invocation("FanoutWorkerFunction")) == {
        "batchItemFailures": []
    }
    for member in members:
        assert [f["message"]["id"] for f in management_api.frames_for(member)] == [message_id]


def test_a_post_whose_retry_would_start_too_late_is_queued_not_dropped(
    in_region: Callable[..., None],
    context: LambdaContext,
    aws_endpoint: str,
    tables: dict[str, Any],
    queues: dict[str, dict[str, provision.QueueEndpoint]],
    management_api: ManagementApiDouble,
) -> None:
    in_region("us-east-1", management_api.url)
    queued_pages(queues, aws_endpoint)
    room = "fan-late-retry"
    throttled = connect(room, context)
    management_api.scripted[throttled] = [429]
    message_id = ulid.new()
    frame_of(
        ws_send.handler(
            send_frame(throttled, {"room": room, "id": message_id, "author": "a", "text": "t"}), context
        )
    )
    records = stream_records(aws_endpoint, "us-east-1", tables["us-east-1"]["stream"], room)

    # The first attempt is throttled; by then the time to post is up, so no retry starts
    response = fanout_stream.handler(stream_event(records), RunningOut(management_api, 1))

    assert response == {"batchItemFailures": []}
    assert management_api.attempts[throttled] == 1
    (page,) = queued_pages(queues, aws_endpoint)
    assert page.connections == (throttled,)
    fanout_worker.handler(page_record(page), invocation("FanoutWorkerFunction"))
    assert [f["message"]["id"] for f in management_api.frames_for(throttled)] == [message_id]


def page_record(page: Page) -> dict[str, Any]:
    """A page as the workers' mapping hands it over (one record)."""
    return {"Records": [{"messageId": ulid.new(), "body": page.encode(), "attributes": {}}]}

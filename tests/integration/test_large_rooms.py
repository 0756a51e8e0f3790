"""Large rooms through the real handlers and a moto queue: the stream handler queues bounded pages
instead of posting, each worker invocation posts one page, and a page's failed posts, or the
posts a worker had no time left to start, come back as a smaller page holding only those
connections."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel

from chat import composition, ulid
from chat.fanout_pages import Page
from chat.handlers import fanout_stream, fanout_worker, ws_send
from localcloud.aws import provision
from localcloud.lambda_.context import LambdaContext
from localcloud.lambda_.queue_mapping import QueueSource
from tests.integration.conftest import ManagementApiDouble
from tests.integration.helpers import frame_of, send_frame, stream_event
from tests.integration.test_fanout_handler import RunningOut, connect, invocation, stream_records

PAGE_POSTS = 10


@pytest.fixture
def page_queue(
    in_region: Callable[..., None],
    aws_endpoint: str,
    queues: dict[str, dict[str, provision.QueueEndpoint]],
    management_api: ManagementApiDouble,
    monkeypatch: pytest.MonkeyPatch,
) -> QueueSource:
    """us-east-1's page queue, empty, with pages of at most PAGE_POSTS posts."""
    in_region("us-east-1", management_api.url)
    monkeypatch.setenv("FANOUT_PAGE_POSTS", str(PAGE_POSTS))
    composition.reset()
    queue = queues["us-east-1"]["FanoutPageQueue"]
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=aws_endpoint)
    sqs.purge_queue(QueueUrl=queue.url)
    return QueueSource(sqs, queue.url, queue.arn, "us-east-1")


def receive_all(queue: QueueSource) -> list[dict[str, Any]]:
    """Every visible message, as Lambda's event source mapping hands them to the worker."""
    records: list[dict[str, Any]] = []
    while batch := queue.receive(10, 0):
        records += batch
    SqsModel.model_validate({"Records": records})
    return records


def work(records: list[dict[str, Any]], context: LambdaContext | None = None) -> dict[str, Any]:
    """One worker invocation (a context of its own unless given) on these queue records."""
    result: dict[str, Any] = fanout_worker.handler(
        {"Records": records}, context or invocation("FanoutWorkerFunction")
    )
    return result


def send_messages(room: str, sender: str, count: int, context: LambdaContext) -> list[str]:
    sent = sorted(ulid.new() for _ in range(count))
    for message_id in sent:
        frame_of(
            ws_send.handler(
                send_frame(sender, {"room": room, "id": message_id, "author": "a", "text": "hi"}), context
            )
        )
    return sent


def test_a_large_room_is_posted_by_workers_one_bounded_page_per_invocation(
    page_queue: QueueSource,
    context: LambdaContext,
    aws_endpoint: str,
    tables: dict[str, Any],
    management_api: ManagementApiDouble,
) -> None:
    room = "large-room"
    members = [connect(room, context) for _ in range(25)]
    sent = send_messages(room, members[0], 2, context)

    response = fanout_stream.handler(
        stream_event(stream_records(aws_endpoint, "us-east-1", tables["us-east-1"]["stream"], room)),
        invocation("FanoutFunction"),
    )

    assert response == {"batchItemFailures": []}
    assert management_api.posts == []  # the stream handler posted nothing of this room
    records = receive_all(page_queue)
    for record in records:
        before = len(management_api.posts)
        assert work([record]) == {"batchItemFailures": []}
        assert len(management_api.posts) - before <= PAGE_POSTS
    page_queue.delete(records)
    for member in members:
        assert [f["message"]["id"] for f in management_api.frames_for(member)] == sent


def test_a_page_retry_posts_only_to_the_connections_that_failed(
    page_queue: QueueSource,
    context: LambdaContext,
    aws_endpoint: str,
    tables: dict[str, Any],
    management_api: ManagementApiDouble,
) -> None:
    room = "large-room-faults"
    members = [connect(room, context) for _ in range(12)]
    (message_id,) = send_messages(room, members[0], 1, context)
    fanout_stream.handler(
        stream_event(stream_records(aws_endpoint, "us-east-1", tables["us-east-1"]["stream"], room)),
        invocation("FanoutFunction"),
    )
    first, second = receive_all(page_queue)  # 12 connections, 10 posts a page
    broken = Page.decode(first["body"]).connections[3]
    management_api.scripted[broken] = [500] * 8  # two invocations' worth of the pusher's attempts

    assert work([first, second]) == {"batchItemFailures": []}
    page_queue.delete([first, second])

    (retry,) = receive_all(page_queue)
    assert Page.decode(retry["body"]).connections == (broken,)  # nobody else gets it again
    for member in members:
        expected = [] if member == broken else [message_id]
        assert [f["message"]["id"] for f in management_api.frames_for(member)] == expected
    # Failing for every connection of its page, the page is reported failed: the queue delivers it
    # again after its visibility timeout, and to the dead-letter queue after maxReceiveCount.
    assert work([retry]) == {"batchItemFailures": [{"itemIdentifier": retry["messageId"]}]}
    assert work([retry]) == {"batchItemFailures": []}
    assert [f["message"]["id"] for f in management_api.frames_for(broken)] == [message_id]


def test_a_page_whose_worker_runs_out_of_time_comes_back_holding_only_the_connections_not_posted(
    page_queue: QueueSource,
    context: LambdaContext,
    aws_endpoint: str,
    tables: dict[str, Any],
    management_api: ManagementApiDouble,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a page of 10 connections and a worker, posting 2 at a time, with time for 4 posts
    monkeypatch.setenv("FANOUT_CONCURRENCY", "2")
    composition.reset()
    room = "large-room-late"
    members = [connect(room, context) for _ in range(12)]
    (message_id,) = send_messages(room, members[0], 1, context)
    fanout_stream.handler(
        stream_event(stream_records(aws_endpoint, "us-east-1", tables["us-east-1"]["stream"], room)),
        invocation("FanoutFunction"),
    )
    first, second = receive_all(page_queue)
    page = Page.decode(first["body"])

    # When the worker runs out of time part way, it still succeeds (before its timeout), so the
    # queue deletes the page instead of delivering it whole again
    assert work([first], RunningOut(management_api, 4)) == {"batchItemFailures": []}
    page_queue.delete([first])

    # Then the page that comes back holds exactly the connections that did not get the message
    (retry,) = receive_all(page_queue)  # `second` stays invisible: it was received above
    posted = {c for c in page.connections if management_api.frames_for(c)}
    assert 4 <= len(posted) < len(page.connections)
    assert sorted(Page.decode(retry["body"]).connections) == sorted(set(page.connections) - posted)

    # and once the retry and the other page are posted, every member has the message once
    assert work([retry, second]) == {"batchItemFailures": []}
    page_queue.delete([retry, second])
    for member in members:
        assert [f["message"]["id"] for f in management_api.frames_for(member)] == [message_id]

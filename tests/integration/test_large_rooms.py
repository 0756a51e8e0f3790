"""Large rooms through the real handlers and a moto queue: the stream handler queues bounded pages
instead of posting, each worker invocation posts one page, and a page's failed posts come back as
a smaller page holding only the connections that failed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import SqsModel

from chat import clients, ulid
from chat.fanout import Page
from chat.handlers import fanout, fanout_worker, ws_send
from localcloud import provision
from localcloud.events import LambdaContext
from localcloud.queues import QueueSource
from tests.integration.conftest import ManagementApiDouble
from tests.integration.helpers import frame_of, send_frame, stream_event
from tests.integration.test_fanout_handler import connect, stream_records

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
    clients.reset()
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

    response = fanout.handler(
        stream_event(stream_records(aws_endpoint, "us-east-1", tables["us-east-1"]["stream"], room)), context
    )

    assert response == {"batchItemFailures": []}
    assert management_api.posts == []  # the stream handler posted nothing of this room
    records = receive_all(page_queue)
    for record in records:
        before = len(management_api.posts)
        assert fanout_worker.handler({"Records": [record]}, context) == {"batchItemFailures": []}
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
    fanout.handler(
        stream_event(stream_records(aws_endpoint, "us-east-1", tables["us-east-1"]["stream"], room)), context
    )
    first, second = receive_all(page_queue)  # 12 connections, 10 posts a page
    broken = Page.decode(first["body"]).connections[3]
    management_api.scripted[broken] = [500] * 8  # two invocations' worth of the pusher's attempts

    assert fanout_worker.handler({"Records": [first, second]}, context) == {"batchItemFailures": []}
    page_queue.delete([first, second])

    (retry,) = receive_all(page_queue)
    assert Page.decode(retry["body"]).connections == (broken,)  # nobody else gets it again
    for member in members:
        expected = [] if member == broken else [message_id]
        assert [f["message"]["id"] for f in management_api.frames_for(member)] == expected
    # Failing for every connection of its page, the page is reported failed: the queue delivers it
    # again after its visibility timeout, and to the dead-letter queue after maxReceiveCount.
    assert fanout_worker.handler({"Records": [retry]}, context) == {
        "batchItemFailures": [{"itemIdentifier": retry["messageId"]}]
    }
    assert fanout_worker.handler({"Records": [retry]}, context) == {"batchItemFailures": []}
    assert [f["message"]["id"] for f in management_api.frames_for(broken)] == [message_id]

"""The event source mapping for an SQS queue, against moto's SQS, with the template's queues and
mapping: batching, partial batch responses, visibility timeouts, the redrive to the dead-letter
queue after maxReceiveCount, and the concurrency it scales up to."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from localcloud.aws import provision
from localcloud.lambda_.queue_mapping import (
    INITIAL_CONCURRENCY,
    QueueEventSourceMapping,
    QueueSource,
    Scaling,
)
from localcloud.lambda_.runtime import TooManyRequestsException
from stack_definition.event_sources import QueueMapping
from stack_definition.template import Template, load

REGION = "us-east-1"
VISIBILITY = 1  # seconds: the template's 90 s, shortened so that a redelivery happens in a test


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def template() -> Template:
    """The template with its page queue's visibility timeout shortened (and a queue name of the
    test's own, so that tests share no messages)."""
    chat = load()
    queues = dict(chat.queues)
    queues["FanoutPageQueue"] = replace(queues["FanoutPageQueue"], visibility_timeout=VISIBILITY)
    return replace(chat, queues=queues, stack_name=f"t{time.monotonic_ns()}")


@pytest.fixture
def page_mapping(template: Template) -> QueueMapping:
    (mapping,) = (m for m in template.queue_mappings if m.queue == "FanoutPageQueue")
    return mapping


class Queues:
    def __init__(self, template: Template, endpoint: str) -> None:
        self.made = provision.create_queues(template, endpoint, REGION)
        self.sqs = provision.client("sqs", endpoint, REGION)

    def source(self, logical_id: str = "FanoutPageQueue") -> QueueSource:
        queue = self.made[logical_id]
        return QueueSource(self.sqs, queue.url, queue.arn, REGION)

    def send(self, *bodies: str) -> None:
        for body in bodies:
            self.sqs.send_message(QueueUrl=self.made["FanoutPageQueue"].url, MessageBody=body)

    def count(self, logical_id: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.made[logical_id].url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


Invoke = Callable[[str, dict[str, Any]], Awaitable[Any]]


async def run_until(mapping: QueueEventSourceMapping, done: asyncio.Event) -> None:
    """Run the mapping until `done`, and until the invocations under way have finished (and their
    messages are deleted)."""
    task = asyncio.create_task(mapping.run())
    try:
        await asyncio.wait_for(done.wait(), timeout=60)
        await asyncio.gather(*mapping.in_flight)
    finally:
        task.cancel()


def test_the_template_names_the_page_queue_its_worker_and_its_dead_letter_queue(template: Template) -> None:
    (mapping,) = template.queue_mappings
    assert (mapping.function, mapping.queue, mapping.batch_size) == (
        "FanoutWorkerFunction",
        "FanoutPageQueue",
        1,
    )
    assert mapping.report_batch_item_failures
    assert template.queues["FanoutPageQueue"].dead_letter_queue == "FanoutPageDeadLetterQueue"


def test_messages_are_batched_and_only_the_reported_failures_come_back_after_the_visibility_timeout(
    template: Template, page_mapping: QueueMapping, endpoint: str
) -> None:
    queues = Queues(template, endpoint)
    queues.send("a", "b", "c")
    deliveries: list[tuple[float, list[str]]] = []
    done = asyncio.Event()

    async def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
        assert function == "FanoutWorkerFunction"
        bodies = sorted(r["body"] for r in event["Records"])
        deliveries.append((time.monotonic(), bodies))
        if bodies == ["b"]:  # the redelivery of the failed one
            done.set()
            return {"batchItemFailures": []}
        failed = [r["messageId"] for r in event["Records"] if r["body"] == "b"]
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}

    settings = replace(page_mapping, batch_size=3, batching_window=0.5)
    mapping = QueueEventSourceMapping(settings, queues.source(), invoke, poll_interval=0.01)
    asyncio.run(run_until(mapping, done))

    (first_at, first), (again_at, again) = deliveries
    assert first == ["a", "b", "c"]  # one batch, gathered within the batching window
    assert again == ["b"]  # a and c were deleted; b came back alone...
    assert again_at - first_at >= VISIBILITY  # ...once its visibility timeout was over
    assert queues.count("FanoutPageQueue") == 0


def test_a_message_that_always_fails_goes_to_the_dead_letter_queue_after_max_receives(
    template: Template, page_mapping: QueueMapping, endpoint: str
) -> None:
    queues = Queues(template, endpoint)
    queues.send("poison")
    max_receives = template.queues["FanoutPageQueue"].max_receive_count
    receives: list[str] = []

    async def invoke(_: str, event: dict[str, Any]) -> dict[str, Any]:
        receives.append(event["Records"][0]["attributes"]["ApproximateReceiveCount"])
        raise RuntimeError("the worker fails every time")

    async def dead_lettered() -> list[dict[str, Any]]:
        mapping = QueueEventSourceMapping(page_mapping, queues.source(), invoke, poll_interval=0.01)
        task = asyncio.create_task(mapping.run())
        try:
            dlq = queues.source("FanoutPageDeadLetterQueue")
            while not (found := await asyncio.to_thread(dlq.receive, 1, 1)):  # long polls
                assert len(receives) <= max_receives
            return found
        finally:
            task.cancel()

    (dead,) = asyncio.run(asyncio.wait_for(dead_lettered(), timeout=60))
    assert dead["body"] == "poison"
    assert receives == [str(n) for n in range(1, max_receives + 1)]
    assert queues.count("FanoutPageQueue") == 0


def test_the_mapping_starts_with_five_concurrent_invocations_and_never_exceeds_its_maximum(
    template: Template, page_mapping: QueueMapping, endpoint: str
) -> None:
    queues = Queues(template, endpoint)
    queues.send(*(str(n) for n in range(12)))
    running, peak, finished = 0, 0, 0
    release, all_done = asyncio.Event(), asyncio.Event()

    async def invoke(_: str, event: dict[str, Any]) -> None:
        nonlocal running, peak, finished
        running += 1
        peak = max(peak, running)
        if running == INITIAL_CONCURRENCY:
            release.set()
        await release.wait()
        running -= 1
        finished += len(event["Records"])
        if finished == 12:
            all_done.set()

    mapping = QueueEventSourceMapping(page_mapping, queues.source(), invoke, poll_interval=0.01)
    asyncio.run(run_until(mapping, all_done))
    assert peak == INITIAL_CONCURRENCY  # a burst starts with five, as Lambda's SQS pollers do


def test_concurrency_grows_by_300_a_minute_while_busy_up_to_maximum_concurrency() -> None:
    now = [0.0]
    scaling = Scaling(maximum=20, clock=lambda: now[0])
    assert scaling.allowed() == 5
    scaling.busy()
    now[0] = 1.0
    assert scaling.allowed() == 10
    now[0] = 60.0
    assert scaling.allowed() == 20
    scaling.quiet()
    assert scaling.allowed() == 5


def test_a_stopped_mapping_hands_what_its_last_poll_received_to_the_function(
    template: Template, page_mapping: QueueMapping, endpoint: str
) -> None:
    queues = Queues(template, endpoint)
    bodies: list[str] = []

    async def invoke(_: str, event: dict[str, Any]) -> None:
        bodies.extend(r["body"] for r in event["Records"])

    async def stop_while_polling() -> QueueEventSourceMapping:
        mapping = QueueEventSourceMapping(page_mapping, queues.source(), invoke, poll_interval=0.01)
        task = asyncio.create_task(mapping.run())
        await asyncio.sleep(0)  # the mapping's first long poll is under way
        mapping.stop()
        await asyncio.to_thread(queues.send, "late")
        await asyncio.wait_for(task, timeout=30)
        await asyncio.gather(*mapping.in_flight)
        return mapping

    asyncio.run(stop_while_polling())
    assert bodies == ["late"]
    assert queues.count("FanoutPageQueue") == 0  # delivered and deleted, not left invisible


def test_a_throttled_page_is_retried_while_invisible_and_delivered_once_when_not(
    template: Template, page_mapping: QueueMapping, endpoint: str
) -> None:
    # given a page, and a function throttled three times (its region's Lambda failing), then not
    queues = Queues(template, endpoint)
    queues.send("page")
    throttles = 3
    delivered: list[str] = []
    done = asyncio.Event()

    async def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
        nonlocal throttles
        if throttles:
            throttles -= 1
            raise TooManyRequestsException(function)
        delivered.extend(
            f"{r['body']} received {r['attributes']['ApproximateReceiveCount']}x" for r in event["Records"]
        )
        done.set()
        return {"batchItemFailures": []}

    # (the retries' backoff, 0.35 s in all, ends within the queue's visibility timeout)
    mapping = QueueEventSourceMapping(
        page_mapping, queues.source(), invoke, poll_interval=0.01, visibility_timeout=VISIBILITY
    )
    asyncio.run(run_until(mapping, done))

    # then the page reached the function once, from its first receive (SQS never delivered it
    # again), and is gone
    assert delivered == ["page received 1x"]
    assert queues.count("FanoutPageQueue") == 0
    assert queues.count("FanoutPageDeadLetterQueue") == 0

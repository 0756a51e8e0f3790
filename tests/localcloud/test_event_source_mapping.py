"""The event source mapping batches as the template asks (BatchSize, MaximumBatchingWindowInSeconds),
retries what the function reports as failed, from the lowest failed record of a stream, and retries
a throttled batch until its records are older than MaximumRecordAgeInSeconds."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any
from unittest.mock import patch

from localcloud.dynamodb.streams import StreamSource
from localcloud.lambda_.event_source_mapping import EventSourceMapping
from localcloud.lambda_.runtime import TooManyRequestsException
from stack_definition.template import load

Record = dict[str, Any]


def record(sequence_number: int) -> Record:
    return {"eventName": "INSERT", "dynamodb": {"SequenceNumber": str(sequence_number)}}


class Trickle:
    """A source that yields one new record per read, `count` in all; then nothing."""

    arn = "arn:aws:dynamodb:local:123456789012:table/messages/stream/1"

    def __init__(self, count: int) -> None:
        self.pending = [record(n) for n in range(1, count + 1)]
        self.committed: list[Record] = []

    def read(self, limit: int) -> list[Record]:
        return [self.pending.pop(0)] if self.pending and limit else []

    def resume(self) -> None:
        pass

    def commit(self, last: Record) -> None:
        self.committed.append(last)

    to_retry = staticmethod(StreamSource.to_retry)


async def batches_for(records: int, *, window: float, batch_size: int) -> list[list[Record]]:
    """The batches the function gets for `records` records that arrive one poll apart."""
    source = Trickle(records)
    batches: list[list[Record]] = []
    all_delivered = asyncio.Event()

    async def invoke(_: str, event: dict[str, Any]) -> None:
        batches.append(event["Records"])
        if sum(map(len, batches)) == records:
            all_delivered.set()

    settings = replace(load().stream, batching_window=window, batch_size=batch_size, filters=[])
    mapping = EventSourceMapping(settings, lambda: source, invoke, wake=asyncio.Event(), poll_interval=0.01)
    task = asyncio.create_task(mapping.run())
    try:
        await asyncio.wait_for(all_delivered.wait(), timeout=30)
    finally:
        task.cancel()
    return batches


def test_records_that_arrive_within_the_batching_window_go_to_the_function_in_one_batch() -> None:
    # A window far longer than the test: the batch goes when it is full, not when the window ends.
    batches = asyncio.run(batches_for(3, window=300.0, batch_size=3))
    assert [len(batch) for batch in batches] == [3]


def test_without_a_batching_window_each_read_is_a_batch() -> None:
    batches = asyncio.run(batches_for(3, window=0.0, batch_size=3))
    assert [len(batch) for batch in batches] == [1, 1, 1]


def test_a_stream_batch_is_retried_from_its_lowest_failed_record() -> None:
    batch = [record(n) for n in (10, 11, 12, 13)]
    assert StreamSource.to_retry(batch, ["12", "11"]) == batch[1:]


def test_a_throttled_batch_is_retried_past_maximum_retry_attempts_and_delivered_whole_once_not() -> None:
    # given the template's stream mapping (MaximumRetryAttempts: 5, bisecting on function errors)
    settings = replace(load().stream, filters=[])
    assert 0 <= settings.max_retries < 10
    assert settings.bisect_on_error
    source = Trickle(0)
    batch = [record(n) for n in (1, 2, 3)]
    throttles = 10  # more than MaximumRetryAttempts
    delivered: list[list[Record]] = []

    async def invoke(function: str, event: dict[str, Any]) -> None:
        nonlocal throttles
        if throttles:
            throttles -= 1
            raise TooManyRequestsException(function)
        delivered.append(event["Records"])

    mapping = EventSourceMapping(settings, lambda: source, invoke, wake=asyncio.Event(), poll_interval=0.01)

    # when its function is throttled ten times, then not
    with patch("localcloud.lambda_.event_source_mapping.asyncio.sleep", no_wait):
        asyncio.run(mapping.deliver(source, batch))

    # then the batch arrives whole, once: not split, not given up
    assert delivered == [batch]


def test_records_older_than_maximum_record_age_are_discarded_instead_of_retried() -> None:
    settings = replace(load().stream, filters=[])
    assert settings.max_record_age > 0
    now = int(time.time())
    old, young = record(1), record(2)
    old["dynamodb"]["ApproximateCreationDateTime"] = now - int(settings.max_record_age) - 5
    young["dynamodb"]["ApproximateCreationDateTime"] = now
    delivered: list[list[Record]] = []

    async def invoke(_: str, event: dict[str, Any]) -> None:
        delivered.append(event["Records"])

    source = Trickle(0)
    mapping = EventSourceMapping(settings, lambda: source, invoke, wake=asyncio.Event(), poll_interval=0.01)
    asyncio.run(mapping.deliver(source, [old, young]))
    assert delivered == [[young]]


async def no_wait(_: float) -> None:
    """The mapping's backoff, skipped: the test is about what is retried, not when."""

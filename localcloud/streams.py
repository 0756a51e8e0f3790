"""DynamoDB Streams as Lambda's event source mapping reads them: shard iterators, batches in
the shape Lambda hands a function, and the event filter patterns of the template."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

log = logging.getLogger("streams")


def lambda_record(record: dict[str, Any], region: str, stream_arn: str) -> dict[str, Any]:
    """A GetRecords record as Lambda delivers it: epoch-second times, the stream's ARN and region."""
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = int(created.timestamp())
    return {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": region,  # moto writes us-east-1 whatever the table's region
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }


def _matches(pattern: Any, value: Any) -> bool:
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(_matches(p, value.get(k)) for k, p in pattern.items())
    if isinstance(pattern, list):
        return value in pattern
    return bool(pattern == value)


def passes_filters(record: dict[str, Any], patterns: list[str]) -> bool:
    """Lambda event filtering, for the equality patterns the template uses (no filters: all pass)."""
    return not patterns or any(_matches(json.loads(p), record) for p in patterns)


class ShardReader:
    """Reads one table's stream from a checkpoint (a sequence number), the way an event source
    mapping does: the checkpoint only moves past records the consumer has finished."""

    def __init__(self, streams: Any, stream_arn: str, *, starting_position: str, checkpoint: str | None):
        self._streams = streams
        self.stream_arn = stream_arn
        shards = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
        self._shard = shards[0]["ShardId"]  # moto keeps one shard per table
        self.checkpoint = checkpoint
        self._starting_position = starting_position
        self._iterator = self._iterator_from(checkpoint, starting_position)

    def _iterator_from(self, checkpoint: str | None, starting_position: str) -> str:
        args: dict[str, Any] = {"StreamArn": self.stream_arn, "ShardId": self._shard}
        if checkpoint is None:
            args["ShardIteratorType"] = starting_position
        else:
            args["ShardIteratorType"], args["SequenceNumber"] = "AFTER_SEQUENCE_NUMBER", checkpoint
        iterator: str = self._streams.get_shard_iterator(**args)["ShardIterator"]
        return iterator

    def read(self, limit: int) -> list[dict[str, Any]]:
        page = self._streams.get_records(ShardIterator=self._iterator, Limit=limit)
        self._iterator = page["NextShardIterator"]
        records: list[dict[str, Any]] = page["Records"]
        return records

    def resume(self) -> None:
        """A new iterator just after the checkpoint: after a failed read the old one may be
        spent or expired, and nothing past the checkpoint has been handed on yet."""
        self._iterator = self._iterator_from(self.checkpoint, self._starting_position)

    def commit(self, sequence_number: str) -> None:
        self.checkpoint = sequence_number

    def retry_from(self, sequence_number: str) -> None:
        """Read again starting at this record (a failed batch, or its lowest failed record)."""
        self._iterator = self._streams.get_shard_iterator(
            StreamArn=self.stream_arn,
            ShardId=self._shard,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=sequence_number,
        )["ShardIterator"]


async def read_with_retries(
    open_reader: Callable[[], ShardReader],
    limit: int,
    reader: ShardReader | None = None,
    *,
    first_delay: float = 0.1,
    max_delay: float = 5.0,
) -> tuple[ShardReader, list[dict[str, Any]]]:
    """The next records, as an event source mapping reads them: a failed call to the stream
    (the endpoint unreachable, throttled, an expired iterator) is retried with exponential
    backoff from the checkpoint, for as long as it takes; it never ends the poller."""
    delay = 0.0
    while True:
        try:
            if reader is None:
                reader = await asyncio.to_thread(open_reader)
            elif delay:
                await asyncio.to_thread(reader.resume)
            records = await asyncio.to_thread(reader.read, limit)
        except (BotoCoreError, ClientError) as error:
            delay = min(max_delay, max(first_delay, delay * 2))
            log.warning("cannot read the stream (%s); retrying in %.1f s", error, delay)
            await asyncio.sleep(delay)
            continue
        if delay:
            log.info("reading the stream again")
        return reader, records

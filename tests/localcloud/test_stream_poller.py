"""The stream poller outlives a transient failure of the AWS endpoint: it retries with backoff
from its checkpoint instead of ending (which took the region's gateway down with it)."""

from __future__ import annotations

import asyncio
from typing import Any

from botocore.exceptions import EndpointConnectionError

from localcloud.dynamodb.streams import ShardReader
from localcloud.lambda_.event_source_mapping import read_with_retries

STREAM = "arn:aws:dynamodb:us-east-1:123456789012:table/messages/stream/1"
RECORD = {"eventID": "1", "dynamodb": {"SequenceNumber": "200"}}


class FlakyStreams:
    """A DynamoDB Streams client whose endpoint is unreachable for the first `outage` calls."""

    def __init__(self, outage: int) -> None:
        self.outage = outage
        self.iterators: list[dict[str, Any]] = []

    def _call(self) -> None:
        if self.outage > 0:
            self.outage -= 1
            raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")

    def describe_stream(self, **_: Any) -> dict[str, Any]:
        self._call()
        return {"StreamDescription": {"Shards": [{"ShardId": "shard-1"}]}}

    def get_shard_iterator(self, **args: Any) -> dict[str, Any]:
        self._call()
        self.iterators.append(args)
        return {"ShardIterator": f"iterator-{len(self.iterators)}"}

    def get_records(self, **_: Any) -> dict[str, Any]:
        self._call()
        return {"Records": [RECORD], "NextShardIterator": "next"}


def test_a_read_that_fails_is_retried_from_the_checkpoint_until_it_succeeds() -> None:
    streams = FlakyStreams(outage=0)
    reader = ShardReader(streams, STREAM, starting_position="LATEST", checkpoint="100")
    streams.outage = 3  # the endpoint goes away after the reader has started

    _, records = asyncio.run(read_with_retries(lambda: reader, 10, reader, first_delay=0.001))

    assert records == [RECORD]
    resumed = streams.iterators[-1]
    assert resumed["ShardIteratorType"] == "AFTER_SEQUENCE_NUMBER"
    assert resumed["SequenceNumber"] == "100"


def test_a_reader_that_cannot_open_yet_is_retried() -> None:
    streams = FlakyStreams(outage=2)

    def open_reader() -> ShardReader:
        return ShardReader(streams, STREAM, starting_position="TRIM_HORIZON", checkpoint=None)

    reader, records = asyncio.run(read_with_retries(open_reader, 10, first_delay=0.001))

    assert records == [RECORD]
    assert reader.stream_arn == STREAM


def test_a_reader_without_a_checkpoint_keeps_its_place_through_failed_reads() -> None:
    # given a reader that started at LATEST and has handed nothing on yet
    streams = FlakyStreams(outage=0)
    reader = ShardReader(streams, STREAM, starting_position="LATEST", checkpoint=None)
    streams.outage = 3  # when its reads fail for a while (the table's DynamoDB failing)

    _, records = asyncio.run(read_with_retries(lambda: reader, 10, reader, first_delay=0.001))

    # then it reads on from where it was, not from a new LATEST that would skip what came meanwhile
    assert records == [RECORD]
    assert [i["ShardIteratorType"] for i in streams.iterators] == ["LATEST"]

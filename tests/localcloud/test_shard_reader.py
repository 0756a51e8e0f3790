"""A stream reader hands each record on once, even when the stream numbers two records alike
(moto does, for two writes to one table at the same moment) and its iterator keeps landing on
the second of them."""

from __future__ import annotations

from typing import Any

from localcloud.dynamodb.streams import ShardReader

STREAM = "arn:aws:dynamodb:eu-west-2:123456789012:table/messages/stream/1"


class MotoLikeStreams:
    """A shard whose records sit at index `SequenceNumber - 1`, as moto keeps them, and whose next
    iterator starts just after the highest number read: after two records numbered alike, that
    is the second of them, on every read until a newer record comes."""

    def __init__(self, records: list[tuple[str, int]]) -> None:
        self.records: list[dict[str, Any]] = [
            {"eventID": event, "dynamodb": {"SequenceNumber": str(number)}} for event, number in records
        ]

    def describe_stream(self, **_: Any) -> dict[str, Any]:
        return {"StreamDescription": {"Shards": [{"ShardId": "shard-1"}]}}

    def get_shard_iterator(self, **_: Any) -> dict[str, Any]:
        return {"ShardIterator": "0"}

    def get_records(self, *, ShardIterator: str, Limit: int) -> dict[str, Any]:
        start = int(ShardIterator)
        page = self.records[start : start + Limit]
        after = max((int(r["dynamodb"]["SequenceNumber"]) for r in page), default=start)
        return {"Records": page, "NextShardIterator": str(after)}


def test_records_numbered_alike_are_each_handed_on_once() -> None:
    # given two writes made at the same moment, numbered alike, as the last records of the stream
    streams = MotoLikeStreams([("first", 1), ("a", 2), ("b", 2)])
    reader = ShardReader(streams, STREAM, starting_position="TRIM_HORIZON", checkpoint=None)

    # when the stream is read several times with nothing new written
    read = [record["eventID"] for _ in range(4) for record in reader.read(10)]

    # then each record was handed on once
    assert read == ["first", "a", "b"]


def test_a_record_after_those_numbered_alike_is_handed_on() -> None:
    # given a reader that has read two records numbered alike
    streams = MotoLikeStreams([("a", 1), ("b", 1)])
    reader = ShardReader(streams, STREAM, starting_position="TRIM_HORIZON", checkpoint=None)
    reader.read(10)

    # when a newer record is written
    streams.records.append({"eventID": "c", "dynamodb": {"SequenceNumber": "3"}})

    # then it is read, and nothing before it again
    assert [record["eventID"] for _ in range(3) for record in reader.read(10)] == ["c"]

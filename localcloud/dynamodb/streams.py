"""DynamoDB Streams as their readers see them: a shard read from a checkpoint (replication reads
them so), and a table's stream as the source of an event source mapping, its records in the
shape Lambda hands a function."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any


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
        self._handed: tuple[int, set[str]] = (-1, set())  # the highest number handed on, its records

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
        return self._not_handed_yet(page["Records"])

    def _not_handed_yet(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A shard's sequence numbers only grow and a record is handed on once. moto can number two
        writes made at the same moment alike; an iterator after that number then starts at the
        second of them on every read until a newer record comes: it is not handed on again."""
        top, handed = self._handed
        fresh = []
        for record in records:
            number, event_id = int(record["dynamodb"]["SequenceNumber"]), str(record.get("eventID"))
            if number < top or (number == top and event_id in handed):
                continue
            if number > top:
                top, handed = number, set()
            handed.add(event_id)
            fresh.append(record)
        self._handed = (top, handed)
        return fresh

    def resume(self) -> None:
        """A new iterator just after the checkpoint: after a failed read the old one may be
        spent or expired, and nothing past the checkpoint has been handed on yet. Before the first
        checkpoint the old iterator stays: a failed read did not move it, and asking for LATEST
        again would skip what was written meanwhile (say, while the table's DynamoDB failed)."""
        if self.checkpoint is not None:
            self._iterator = self._iterator_from(self.checkpoint, self._starting_position)

    def commit(self, sequence_number: str) -> None:
        self.checkpoint = sequence_number


class StreamSource:
    """A table's stream as the source of an event source mapping: Lambda-shaped records after the
    checkpoint, which is kept in a file so that a restarted region resumes where it was."""

    def __init__(
        self, streams: Any, stream_arn: str, *, region: str, starting_position: str, checkpoint_file: Path
    ) -> None:
        self.arn = stream_arn
        self._region = region
        self._file = checkpoint_file
        self._reader = ShardReader(
            streams, stream_arn, starting_position=starting_position, checkpoint=self._saved_checkpoint()
        )

    def _saved_checkpoint(self) -> str | None:
        try:
            saved = json.loads(self._file.read_text())
        except (OSError, ValueError):
            return None
        return saved.get("sequenceNumber") if saved.get("streamArn") == self.arn else None

    def read(self, limit: int) -> list[dict[str, Any]]:
        return [lambda_record(record, self._region, self.arn) for record in self._reader.read(limit)]

    def resume(self) -> None:
        self._reader.resume()

    def commit(self, record: dict[str, Any]) -> None:
        sequence_number = record["dynamodb"]["SequenceNumber"]
        self._reader.commit(sequence_number)
        tmp = self._file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"streamArn": self.arn, "sequenceNumber": sequence_number}))
        tmp.replace(self._file)

    @staticmethod
    def to_retry(batch: list[dict[str, Any]], failed: list[str]) -> list[dict[str, Any]]:
        """A stream is in order: a batch is retried from its lowest failed record on."""
        lowest = min(int(sequence_number) for sequence_number in failed)
        return [r for r in batch if int(r["dynamodb"]["SequenceNumber"]) >= lowest]

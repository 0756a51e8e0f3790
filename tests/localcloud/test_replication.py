"""Global-table replication while a region's DynamoDB fails: nothing goes into or out of that
region, what it should get waits, and after heal everything arrives, last writer wins as ever."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from localcloud.dynamodb.replication import Replicator

US, EU = "us-east-1", "eu-west-2"
_sequence = itertools.count(1)


class Table:
    """One region's replica: its items, and its stream of the writes made to it."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.stream: list[dict[str, Any]] = []

    def write(self, key: str, text: str, at: float) -> None:
        item = {"pk": {"S": key}, "text": {"S": text}}
        self.items[key] = item
        self.stream.append(
            {
                "eventName": "INSERT",
                "dynamodb": {
                    "Keys": {"pk": {"S": key}},
                    "NewImage": item,
                    "SequenceNumber": str(next(_sequence)),
                    "ApproximateCreationDateTime": datetime.fromtimestamp(at, tz=UTC),
                },
            }
        )

    def put_item(self, *, TableName: str, Item: dict[str, Any]) -> None:
        self.items[Item["pk"]["S"]] = Item
        self.stream.append(
            {
                "eventName": "INSERT",
                "dynamodb": {"Keys": {"pk": Item["pk"]}, "NewImage": Item, "SequenceNumber": "0"},
            }
        )

    def texts(self) -> dict[str, str]:
        return {key: item["text"]["S"] for key, item in self.items.items()}


class Reader:
    def __init__(self, table: Table) -> None:
        self.table = table
        self.at = 0

    def read(self, limit: int) -> list[dict[str, Any]]:
        records = self.table.stream[self.at : self.at + limit]
        self.at += len(records)
        return records

    def commit(self, _: str) -> None:
        pass


def replicator(tables: dict[str, Table]) -> Replicator:
    return Replicator(
        tables=tables,
        readers={region: Reader(table) for region, table in tables.items()},  # type: ignore[misc]
        table_name="messages",
        delay=0.0,
    )


def test_writes_into_and_out_of_a_region_whose_dynamodb_fails_wait_and_arrive_after_heal() -> None:
    # given two regions, us-east-1's DynamoDB failing
    tables = {US: Table(), EU: Table()}
    replication = replicator(tables)
    replication.failing = {US}
    # (written before the fault, not yet read: it waits in us-east-1's stream)
    tables[US].write("before", "written in us-east-1 just before", at=1.0)

    # when London writes while it fails
    tables[EU].write("during", "written in london", at=2.0)
    for now in (10.0, 11.0, 12.0):
        replication.step(now)

    # then nothing goes in or out
    assert "during" not in tables[US].items
    assert "before" not in tables[EU].items
    assert replication.status()["failingRegions"] == [US]

    # when it heals, both arrive and the histories are equal
    replication.failing = set()
    replication.step(13.0)
    replication.step(14.0)
    both = {"before": "written in us-east-1 just before", "during": "written in london"}
    assert tables[US].texts() == tables[EU].texts() == both
    assert replication.status()["pending"] == 0


def test_after_heal_the_last_writer_still_wins() -> None:
    # given one key written in both regions while us-east-1's DynamoDB fails, London's write first
    tables = {US: Table(), EU: Table()}
    replication = replicator(tables)
    replication.failing = {US}
    tables[EU].write("same", "older, from london", at=1.0)
    replication.step(5.0)
    tables[US].write("same", "newer, from virginia", at=2.0)  # e.g. just before the fault took hold

    # when it heals
    replication.failing = set()
    for now in (6.0, 7.0, 8.0):
        replication.step(now)

    # then both regions hold the later write
    assert tables[US].texts() == tables[EU].texts() == {"same": "newer, from virginia"}


class RereadingReader(Reader):
    """A stream read as moto's iterator reads it after two writes numbered alike: with nothing
    newer, every read hands the last record again."""

    def read(self, limit: int) -> list[dict[str, Any]]:
        records = super().read(limit)
        return records or self.table.stream[-1:]


class RetriedTable(Table):
    """A replica whose every put is answered late and retried: the item is written twice, so
    its stream holds two records of the one replicated write."""

    def put_item(self, *, TableName: str, Item: dict[str, Any]) -> None:
        super().put_item(TableName=TableName, Item=Item)
        super().put_item(TableName=TableName, Item=Item)


def test_a_record_read_again_is_not_replicated_again() -> None:
    # given London's last write, which its stream reader hands out again on every read
    tables = {US: Table(), EU: Table()}
    replication = Replicator(
        tables=tables,
        readers={US: Reader(tables[US]), EU: RereadingReader(tables[EU])},  # type: ignore[dict-item]
        table_name="messages",
        delay=0.0,
    )
    tables[EU].write("last", "the last message of the drill", at=1.0)

    # when replication runs for a while with nothing new written
    for now in range(2, 12):
        replication.step(float(now))

    # then us-east-1 got it once and nothing came back to London
    assert [r["dynamodb"]["NewImage"] for r in tables[US].stream] == [tables[EU].items["last"]]
    assert len(tables[EU].stream) == 1
    assert replication.status()["replicated"] == 1


def test_a_replicated_write_stored_twice_is_not_sent_back() -> None:
    # given a us-east-1 replica whose puts are retried (each replicated write lands twice)
    tables = {US: RetriedTable(), EU: Table()}
    replication = replicator(tables)
    tables[EU].write("m", "from london", at=1.0)

    # when replication runs
    for now in range(2, 8):
        replication.step(float(now))

    # then London's table was written once, by its own client, and both hold the message
    assert len(tables[EU].stream) == 1
    assert tables[US].texts() == tables[EU].texts() == {"m": "from london"}

"""Fan-out with fakes: one query per room per batch, 410s removed, failures isolated."""

from __future__ import annotations

import json
from typing import Any

from chat import ulid
from chat.fanout import StreamRecord, fan_out
from chat.handlers.fanout import parse_records
from chat.model import Message
from chat.store import message_to_item
from tests.unit.fakes import FakeConnectionStore, FakePusher

NOW = 1_790_000_000_000


def message(seq: int, room: str) -> Message:
    return Message(
        id=ulid.new(NOW + seq),
        room=room,
        author="a",
        authorId="g_A",
        text=f"m{seq}",
        sentAt="t",
        acceptedRegion="eu-west-2",
        transport="http",
    )


def record(seq: int, room: str) -> StreamRecord:
    return StreamRecord(str(seq), message(seq, room))


def stream_record(seq: int, event: str, image: dict[str, Any] | None) -> dict[str, Any]:
    """A record as DynamoDB Streams hands it to the function."""
    dynamodb: dict[str, Any] = {"SequenceNumber": str(seq)}
    if image is not None:
        dynamodb["NewImage"] = image
    return {"eventName": event, "dynamodb": dynamodb}


def run(records: list[StreamRecord], connections: FakeConnectionStore, pusher: FakePusher):  # type: ignore[no-untyped-def]
    return fan_out(records, connections=connections, pusher=pusher, region="us-east-1", concurrency=8)


def test_every_connection_in_the_room_gets_every_message_in_order() -> None:
    connections = FakeConnectionStore({"r": ["c1", "c2"], "other": ["c3"]})
    pusher = FakePusher()
    result = run([record(1, "r"), record(2, "r")], connections, pusher)
    for connection in ("c1", "c2"):
        frames = [json.loads(data) for cid, data in pusher.posts if cid == connection]
        assert [f["message"]["text"] for f in frames] == ["m1", "m2"]
        assert all(f["type"] == "message" and f["deliveredBy"] == "us-east-1" for f in frames)
        assert frames[0]["message"]["acceptedRegion"] == "eu-west-2"
    assert result.delivered == 4
    assert result.failed == []


def test_one_connections_query_per_room_per_batch() -> None:
    connections = FakeConnectionStore({"a": ["c1"], "b": ["c2"]})
    run([record(1, "a"), record(2, "b"), record(3, "a"), record(4, "b")], connections, FakePusher())
    assert sorted(connections.queries) == ["a", "b"]


def test_only_inserts_are_new_messages() -> None:
    new = message(4, "r")
    image = message_to_item(new, 0)
    event = {
        "Records": [
            stream_record(1, "MODIFY", image),
            stream_record(2, "REMOVE", None),
            stream_record(3, "INSERT", None),
            stream_record(4, "INSERT", image),
        ]
    }
    assert parse_records(event) == [StreamRecord("4", new)]


def test_gone_connections_are_removed_and_the_rest_still_delivered() -> None:
    ids = [f"c{i}" for i in range(40)]
    gone = {"c3", "c17", "c39"}
    connections = FakeConnectionStore({"r": ids})
    pusher = FakePusher(gone=gone, failing={"c5"})
    result = run([record(1, "r"), record(2, "r")], connections, pusher)
    assert sorted(connections.deleted) == sorted(gone)
    assert result.gone == 3
    assert result.failed_posts == 2  # c5 failed both frames, and that blocked nothing
    assert result.delivered == 2 * (40 - 3 - 1)
    assert result.failed == []


def test_a_room_whose_connections_cannot_be_read_fails_only_its_records() -> None:
    connections = FakeConnectionStore({"ok": ["c1"], "bad": ["c2"]})
    connections.unreadable.add("bad")
    pusher = FakePusher()
    result = run([record(1, "ok"), record(2, "bad"), record(3, "ok")], connections, pusher)
    assert result.failed == ["2"]
    assert [room for room, _ in result.unreadable_rooms] == ["bad"]
    assert [cid for cid, _ in pusher.posts] == ["c1", "c1"]


def test_a_malformed_image_is_skipped_not_retried_forever() -> None:
    good = message(2, "r")
    event = {
        "Records": [
            stream_record(1, "INSERT", {"pk": {"S": "room#r"}}),
            stream_record(2, "INSERT", message_to_item(good, 0)),
        ]
    }
    assert parse_records(event) == [StreamRecord("2", good)]

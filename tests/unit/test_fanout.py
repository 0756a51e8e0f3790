"""Fan-out with fakes: one query per room per batch, 410s removed, failures isolated."""

from __future__ import annotations

import json

from chat import ulid
from chat.fanout import StreamRecord, fan_out
from chat.model import Message
from chat.store import message_to_item
from tests.unit.fakes import FakeConnectionStore, FakePusher

NOW = 1_790_000_000_000


def record(seq: int, room: str, event: str = "INSERT") -> StreamRecord:
    message = Message(
        id=ulid.new(NOW + seq),
        room=room,
        author="a",
        text=f"m{seq}",
        sentAt="t",
        acceptedRegion="eu-west-2",
        transport="http",
    )
    return StreamRecord(str(seq), event, message_to_item(message, 0))


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


def test_only_inserts_are_fanned_out() -> None:
    connections = FakeConnectionStore({"r": ["c1"]})
    pusher = FakePusher()
    run(
        [record(1, "r", "MODIFY"), record(2, "r", "REMOVE"), StreamRecord("3", "INSERT", None)],
        connections,
        pusher,
    )
    assert pusher.posts == []
    assert connections.queries == []


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
    assert [cid for cid, _ in pusher.posts] == ["c1", "c1"]


def test_a_malformed_image_is_skipped_not_retried_forever() -> None:
    connections = FakeConnectionStore({"r": ["c1"]})
    result = run(
        [StreamRecord("1", "INSERT", {"pk": {"S": "room#r"}}), record(2, "r")], connections, FakePusher()
    )
    assert result.failed == []
    assert result.delivered == 1

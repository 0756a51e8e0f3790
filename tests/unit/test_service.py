"""The chat rules with fake stores: idempotent writes, connections, history, health."""

from __future__ import annotations

import pytest

from chat import ulid
from chat.model import InvalidInput
from chat.ports import StoreError
from chat.service import accept_message, check_health, open_connection, read_history
from chat.settings import Settings
from tests.unit.fakes import FakeConnectionStore, FakeMessageStore

NOW = 1_790_000_000_000
US = Settings(region="us-east-1", messages_table="m", connections_table="c")
EU = Settings(region="eu-west-2", messages_table="m", connections_table="c")


def send(store: FakeMessageStore, settings: Settings, body: dict[str, object]):  # type: ignore[no-untyped-def]
    return accept_message(body, transport="websocket", store=store, settings=settings, now_ms=NOW)


def test_a_new_message_is_stored_with_its_region_and_the_time_of_its_id() -> None:
    store = FakeMessageStore()
    message_id = ulid.new(NOW - 1500)
    message, created = send(store, US, {"id": message_id, "room": "r", "author": "a", "text": "t"})
    assert created
    assert message.acceptedRegion == "us-east-1"
    assert message.transport == "websocket"
    assert message.sentAt == "2026-09-21T14:13:18.500Z"
    assert store.items[("r", message_id)] == message


def test_a_retry_in_the_other_region_returns_what_was_stored_first() -> None:
    store = FakeMessageStore()
    body = {"id": ulid.new(NOW), "room": "r", "author": "a", "text": "t"}
    first, _ = send(store, US, body)
    again, created = send(store, EU, body)
    assert not created
    assert again == first
    assert store.writes == 1


def test_bad_input_writes_nothing() -> None:
    store = FakeMessageStore()
    with pytest.raises(InvalidInput):
        send(store, US, {"id": ulid.new(NOW), "room": "r", "author": "a", "text": ""})
    assert store.writes == 0


def test_a_connection_needs_a_room_and_an_author() -> None:
    connections = FakeConnectionStore()
    with pytest.raises(InvalidInput) as caught:
        open_connection("c1", {"room": "r"}, store=connections, settings=US, now_ms=NOW)
    assert caught.value.code == "missing_field"
    with pytest.raises(InvalidInput):
        open_connection("c1", None, store=connections, settings=US, now_ms=NOW)
    assert connections.rooms == {}


def test_a_connection_is_registered_in_its_room() -> None:
    connections = FakeConnectionStore()
    open_connection("c1", {"room": "r", "author": "ada"}, store=connections, settings=US, now_ms=NOW)
    assert connections.rooms == {"r": ["c1"]}


def test_history_pages_oldest_first_and_names_the_serving_region() -> None:
    store = FakeMessageStore()
    ids = [ulid.new(NOW + i) for i in range(5)]
    for message_id in reversed(ids):
        send(store, US, {"id": message_id, "room": "r", "author": "a", "text": "t"})
    first = read_history("r", after=None, limit="2", store=store, region="eu-west-2")
    assert [m["id"] for m in first["messages"]] == ids[:2]
    assert first["region"] == "eu-west-2"
    assert first["next"] == ids[1]
    rest = read_history("r", after=first["next"], limit="10", store=store, region="eu-west-2")
    assert [m["id"] for m in rest["messages"]] == ids[2:]
    assert rest["next"] is None


def test_health_is_ok_when_both_tables_answer() -> None:
    healthy, body = check_health(
        messages=FakeMessageStore(), connections=FakeConnectionStore(), region="us-east-1", now_ms=NOW
    )
    assert healthy
    assert body["status"] == "ok"
    assert body["region"] == "us-east-1"


def test_health_names_the_failing_table() -> None:
    messages = FakeMessageStore()
    messages.fail = StoreError("PutItem", "ServiceUnavailable")
    healthy, body = check_health(
        messages=messages, connections=FakeConnectionStore(), region="us-east-1", now_ms=NOW
    )
    assert not healthy
    assert body["status"] == "unhealthy"
    assert body["failing"] == "messagesTable"
    assert body["region"] == "us-east-1"

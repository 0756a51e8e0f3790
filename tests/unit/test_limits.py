"""The limits' rules with fakes: the connection cap's slots, metered guest sign-in, and the room
budget every guest shares."""

from __future__ import annotations

import pytest

from chat import ulid
from chat.connection_slots import SlotEntry, expired_entries, parse_entry, slot_entry
from chat.errors import RateLimited, StoreError
from chat.model import Author
from chat.service import accept_message, admit_guest_sign_in, open_connection
from chat.settings import Settings
from tests.unit.fakes import FakeConnectionStore, FakeMessageStore, FakeRateLimiter

NOW = 1_790_000_000_000
US = Settings(region="us-east-1", messages_table="m", connections_table="c")
GUEST = Author(user_id="g_GUEST", name="Gil")
ACCOUNT = Author(user_id="o_account", name="Olu")


def connect(store: FakeConnectionStore, connection_id: str, now_ms: int = NOW) -> None:
    open_connection(connection_id, {"room": "r"}, author=GUEST, store=store, settings=US, now_ms=now_ms)


def test_given_a_full_cap_when_one_more_connects_then_it_is_refused_and_holds_no_slot() -> None:
    store = FakeConnectionStore()
    for n in range(US.max_connections_per_user):
        connect(store, f"c{n}")
    with pytest.raises(RateLimited) as caught:
        connect(store, "extra")
    assert caught.value.retry_after_ms is None
    assert "extra" not in store.slots["g_GUEST"]
    assert len(store.slots["g_GUEST"]) == US.max_connections_per_user


def test_given_a_full_cap_when_a_connection_closes_then_its_slot_is_free_again() -> None:
    store = FakeConnectionStore()
    for n in range(US.max_connections_per_user):
        connect(store, f"c{n}")
    store.delete_connection("c0")
    connect(store, "next")
    assert "next" in store.slots["g_GUEST"]


def test_given_slots_past_their_expiry_when_the_cap_is_reached_then_they_no_longer_count() -> None:
    store = FakeConnectionStore()
    for n in range(US.max_connections_per_user):
        connect(store, f"c{n}")  # none of them ever gets a $disconnect
    connect(store, "later", now_ms=NOW + US.connection_ttl_seconds * 1000)
    assert list(store.slots["g_GUEST"]) == ["later"]


def test_given_a_registration_that_fails_when_connecting_then_the_slot_is_given_back() -> None:
    store = FakeConnectionStore()
    store.fail_put = StoreError("PutItem", "ProvisionedThroughputExceededException")
    with pytest.raises(StoreError):
        connect(store, "c1")
    assert store.slots["g_GUEST"] == {}


def test_an_entry_names_its_expiry_connection_and_room_and_is_expired_from_that_second_on() -> None:
    entries = [slot_entry("abc=", 100, "r"), slot_entry("def=", 101, "r")]
    assert entries[0] == "100 abc= r"
    assert parse_entry(entries[0]) == SlotEntry("abc=", "r", 100)
    assert parse_entry("100 abc=") == SlotEntry("abc=", None, 100)  # written before entries named their room
    assert expired_entries(entries, 99) == []
    assert expired_entries(entries, 100) == ["100 abc= r"]
    assert expired_entries(entries, 101) == entries


def test_guest_sign_ins_are_metered_per_source_address_with_the_wait() -> None:
    limiter = FakeRateLimiter({"guest-sign-in#203.0.113.9": 5400})
    admit_guest_sign_in("198.51.100.7", limiter=limiter, settings=US, now_ms=NOW)
    with pytest.raises(RateLimited) as caught:
        admit_guest_sign_in("203.0.113.9", limiter=limiter, settings=US, now_ms=NOW)
    assert caught.value.retry_after_ms == 5400
    assert caught.value.to_json()["code"] == "rate_limited"


def test_the_default_budgets_sign_ins_10_a_minute_burst_20_room_guests_20_a_second_burst_40() -> None:
    assert US.guest_sign_in_rate.interval_ms == 6000
    assert US.guest_sign_in_rate.tolerance_ms == 6000 * 19
    assert (US.guest_room_rate.interval_ms, US.guest_room_rate.tolerance_ms) == (50, 50 * 39)


def send(author: Author, limiter: FakeRateLimiter, store: FakeMessageStore) -> None:
    accept_message(
        {"id": ulid.new(NOW), "room": "lobby", "text": "hi"},
        author=author,
        transport="http",
        store=store,
        limiter=limiter,
        settings=US,
        now_ms=NOW,
    )


def test_given_the_rooms_guests_over_their_budget_then_a_guest_is_refused_and_nothing_stored() -> None:
    limiter, store = FakeRateLimiter({"guests-in-room#lobby": 250}), FakeMessageStore()
    with pytest.raises(RateLimited) as caught:
        send(GUEST, limiter, store)
    assert caught.value.retry_after_ms == 250
    assert store.items == {}
    assert limiter.asked == ["g_GUEST", "guests-in-room#lobby"]  # the guest's own budget first


def test_given_the_rooms_guests_over_their_budget_then_an_account_still_gets_through() -> None:
    limiter, store = FakeRateLimiter({"guests-in-room#lobby": 250}), FakeMessageStore()
    send(ACCOUNT, limiter, store)
    assert len(store.items) == 1
    assert limiter.asked == ["o_account"]  # accounts never spend the guests' budget


def test_a_guest_over_its_own_rate_does_not_spend_the_rooms_budget() -> None:
    limiter = FakeRateLimiter({"g_GUEST": 100})
    with pytest.raises(RateLimited):
        send(GUEST, limiter, FakeMessageStore())
    assert limiter.asked == ["g_GUEST"]

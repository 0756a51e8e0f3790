"""The chat rules with fake stores: idempotent writes, connections, history, health."""

from __future__ import annotations

import pytest

from chat import sessions, ulid
from chat.errors import ChatError, InvalidInput, RateLimited, StoreError
from chat.model import Author
from chat.oidc import InvalidIdToken
from chat.ports import Account
from chat.service import accept_message, authenticate, check_health, open_connection, read_history, sign_in
from chat.settings import Settings
from tests.unit.fakes import (
    FakeConnectionStore,
    FakeKeySource,
    FakeMessageStore,
    FakeRateLimiter,
    FakeSessionRevocations,
)

NOW = 1_790_000_000_000
US = Settings(region="us-east-1", messages_table="m", connections_table="c")
EU = Settings(region="eu-west-2", messages_table="m", connections_table="c")
ADA = Author(user_id="g_ADA", name="Ada")
EVE = Author(user_id="g_EVE", name="Eve")
KEYS = FakeKeySource(sessions.SigningKeys({"k1": b"k" * 40}, "k1"))


def send(  # type: ignore[no-untyped-def]
    store: FakeMessageStore,
    settings: Settings,
    body: dict[str, object],
    author: Author = ADA,
    limiter: FakeRateLimiter | None = None,
):
    return accept_message(
        body,
        author=author,
        transport="websocket",
        store=store,
        limiter=limiter or FakeRateLimiter(),
        settings=settings,
        now_ms=NOW,
    )


def test_a_new_message_is_stored_with_its_region_its_author_and_the_time_of_its_id() -> None:
    store = FakeMessageStore()
    message_id = ulid.new(NOW - 1500)
    message, created = send(store, US, {"id": message_id, "room": "r", "author": "mallory", "text": "t"})
    assert created
    assert (message.author, message.authorId) == ("Ada", "g_ADA")  # the session's, not the body's
    assert message.acceptedRegion == "us-east-1"
    assert message.transport == "websocket"
    assert message.sentAt == "2026-09-21T14:13:18.500Z"
    assert store.items[("r", message_id, "g_ADA")] == message


def test_a_retry_in_the_other_region_returns_what_was_stored_first() -> None:
    store = FakeMessageStore()
    body = {"id": ulid.new(NOW), "room": "r", "text": "t"}
    first, _ = send(store, US, body)
    again, created = send(store, EU, body)
    assert not created
    assert again == first
    assert store.writes == 1


def test_another_authors_message_of_the_same_id_is_another_message() -> None:
    store = FakeMessageStore()
    message_id = ulid.new(NOW)
    ada, _ = send(store, US, {"id": message_id, "room": "r", "text": "mine"})
    eve, created = send(store, EU, {"id": message_id, "room": "r", "text": "not yours"}, author=EVE)
    assert created
    assert (ada.text, eve.text) == ("mine", "not yours")
    assert store.items[("r", message_id, "g_ADA")].text == "mine"


def test_bad_input_writes_nothing_and_costs_no_limiter_call() -> None:
    store, limiter = FakeMessageStore(), FakeRateLimiter()
    with pytest.raises(InvalidInput):
        send(store, US, {"id": ulid.new(NOW), "room": "r", "text": ""}, limiter=limiter)
    assert store.writes == 0
    assert limiter.asked == []


def test_over_the_rate_a_message_is_refused_with_the_wait_and_not_stored() -> None:
    store = FakeMessageStore()
    limiter = FakeRateLimiter(waits={"g_ADA": 180})
    with pytest.raises(RateLimited) as caught:
        send(store, US, {"id": ulid.new(NOW), "room": "r", "text": "t"}, limiter=limiter)
    assert caught.value.to_json()["code"] == "rate_limited"
    assert caught.value.to_json()["retryAfterMs"] == 180
    assert store.writes == 0
    send(store, US, {"id": ulid.new(NOW), "room": "r", "text": "t"}, author=EVE, limiter=limiter)
    assert store.writes == 1  # another identity still sends


def test_a_connection_needs_a_room() -> None:
    connections = FakeConnectionStore()
    with pytest.raises(InvalidInput) as caught:
        open_connection("c1", {"author": "ada"}, author=ADA, store=connections, settings=US, now_ms=NOW)
    assert caught.value.code == "missing_field"
    with pytest.raises(InvalidInput):
        open_connection("c1", None, author=ADA, store=connections, settings=US, now_ms=NOW)
    assert connections.rooms == {}


def test_a_connection_is_registered_in_its_room_under_its_user() -> None:
    connections = FakeConnectionStore()
    open_connection("c1", {"room": "r"}, author=ADA, store=connections, settings=US, now_ms=NOW)
    assert connections.rooms == {"r": ["c1"]}
    assert connections.users == {"g_ADA": ["c1"]}


def test_one_connection_over_the_cap_is_refused_with_rate_limited() -> None:
    connections = FakeConnectionStore()
    for n in range(US.max_connections_per_user):
        open_connection(f"c{n}", {"room": "r"}, author=ADA, store=connections, settings=US, now_ms=NOW)
    with pytest.raises(RateLimited) as caught:
        open_connection("extra", {"room": "r"}, author=ADA, store=connections, settings=US, now_ms=NOW)
    assert caught.value.status == 429
    assert len(connections.users["g_ADA"]) == US.max_connections_per_user
    open_connection("eve", {"room": "r"}, author=EVE, store=connections, settings=US, now_ms=NOW)


def test_history_pages_oldest_first_and_names_the_serving_region() -> None:
    store = FakeMessageStore()
    ids = [ulid.new(NOW + i) for i in range(5)]
    for message_id in reversed(ids):
        send(store, US, {"id": message_id, "room": "r", "text": "t"})
    first = read_history("r", after=None, limit="2", store=store, region="eu-west-2")
    assert [m["id"] for m in first["messages"]] == ids[:2]
    assert first["region"] == "eu-west-2"
    assert first["next"] == ids[1]
    rest = read_history("r", after=first["next"], limit="10", store=store, region="eu-west-2")
    assert [m["id"] for m in rest["messages"]] == ids[2:]
    assert rest["next"] is None


def new_session(  # type: ignore[no-untyped-def]
    body: dict[str, object],
    settings: Settings = US,
    authorization: str | None = None,
    revocations: FakeSessionRevocations | None = None,
    now: int = NOW // 1000,
):
    return sign_in(
        body,
        authorization=authorization,
        keys=KEYS,
        accounts=None,
        revocations=revocations or FakeSessionRevocations(),
        settings=settings,
        now=now,
    )


def test_a_guest_signs_in_by_name_and_the_token_names_them() -> None:
    session = new_session({"name": " Ada "})
    assert session["user"]["name"] == "Ada"
    assert session["user"]["id"].startswith("g_")
    author = authenticate(
        f"Bearer {session['token']}", KEYS, revocations=FakeSessionRevocations(), settings=US, now=NOW // 1000
    )
    assert author == Author(user_id=session["user"]["id"], name="Ada")


def test_renewal_keeps_the_user_id_and_may_change_the_name() -> None:
    first = new_session({"name": "Ada"})
    renewed = new_session({}, authorization=f"Bearer {first['token']}")
    renamed = new_session({"name": "Ada L."}, authorization=f"Bearer {first['token']}")
    assert renewed["user"] == first["user"]
    assert renamed["user"] == {**first["user"], "name": "Ada L."}  # the same id, tag and kind


@pytest.mark.parametrize(
    ("body", "settings", "authorization", "code"),
    [
        ({"name": "Ada"}, Settings("r", "m", "c", guest_sign_in=False), None, "guest_sign_in_disabled"),
        ({"idToken": "x"}, US, None, "oidc_sign_in_disabled"),
        ({}, US, None, "missing_field"),
        ({"name": "\u202enimda"}, US, None, "invalid_name"),
        ([], US, None, "invalid_message"),
        ({}, US, "Bearer junk", "unauthorized"),
        ({}, US, "Basic YWRhOg==", "unauthorized"),
    ],
)
def test_a_sign_in_that_cannot_be_honoured_gets_its_code(
    body: object, settings: Settings, authorization: str | None, code: str
) -> None:
    with pytest.raises(ChatError) as caught:
        new_session(body, settings, authorization)  # type: ignore[arg-type]
    assert caught.value.code == code


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


class FakeAccounts:
    def verify(self, id_token: str, *, now: int, nonce: str | None = None) -> Account:
        if id_token != "good":
            raise InvalidIdToken("the ID token's signature does not match")
        return Account(issuer="https://idp.example", subject="sub-1", name="Ada from the IdP")


def test_an_account_signs_in_as_the_same_user_every_time_with_its_providers_name() -> None:
    sign = lambda body: sign_in(  # noqa: E731 - a local shorthand
        body,
        authorization=None,
        keys=KEYS,
        accounts=FakeAccounts(),
        revocations=FakeSessionRevocations(),
        settings=US,
        now=NOW // 1000,
    )
    first, again, named = (
        sign({"idToken": "good"}),
        sign({"idToken": "good"}),
        sign({"idToken": "good", "name": "A"}),
    )
    assert first["user"]["id"] == again["user"]["id"] == named["user"]["id"]
    assert first["user"]["id"] == sessions.account_user_id("https://idp.example", "sub-1")
    assert (first["user"]["name"], named["user"]["name"]) == ("Ada from the IdP", "A")
    with pytest.raises(InvalidIdToken):
        sign({"idToken": "forged"})

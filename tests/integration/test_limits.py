"""The limits through the real handlers and adapters against moto: the connection cap's slots
(atomic under concurrency, given back on close, freed when a connection expires without a
`$disconnect`), guest sign-ins per source address, and a room's budget for all its guests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from chat import composition, ulid
from chat.errors import RateLimited
from chat.handlers import http_api, ws_connect, ws_disconnect
from chat.model import Author
from chat.presence_store import DynamoPresence
from chat.service import accept_message
from chat.settings import get_settings
from chat.store import DynamoConnectionStore
from localcloud.apigateway.events import new_connection_id
from localcloud.aws import provision
from localcloud.lambda_.context import LambdaContext
from tests.integration.helpers import http, ws

T0 = 1_790_000_000  # s
TTL = 7500  # the template's connection lifetime (2 h 5 min)


@pytest.fixture
def connections(aws_endpoint: str, tables: dict[str, Any]) -> DynamoConnectionStore:
    client = provision.client("dynamodb", aws_endpoint, "us-east-1")
    presence = DynamoPresence(client, tables["us-east-1"]["messages"])
    return DynamoConnectionStore(
        client, tables["us-east-1"]["connections"], presence=presence, region="us-east-1"
    )


def claim(store: DynamoConnectionStore, user: str, connection_id: str, now: int, cap: int = 5) -> bool:
    return store.claim_slot(user, connection_id, room="r", expires_at=now + TTL, cap=cap, now=now) is not None


def test_given_thirty_simultaneous_claims_then_exactly_the_cap_succeed(
    connections: DynamoConnectionStore,
) -> None:
    with ThreadPoolExecutor(30) as pool:
        for round_ in range(5):
            user, start = f"g_RACE{round_}{ulid.new()}", threading.Barrier(30)

            def connect(n: int, user: str = user, start: threading.Barrier = start) -> bool:
                start.wait()
                return claim(connections, user, f"c{n}", T0)

            assert list(pool.map(connect, range(30))).count(True) == 5


def test_given_a_full_cap_when_a_connection_is_deleted_then_its_slot_comes_back(
    connections: DynamoConnectionStore,
) -> None:
    user = f"g_CLOSE{ulid.new()}"
    for n in range(5):
        assert claim(connections, user, f"c{n}", T0)
        connections.put_connection(
            f"{user}-c{n}", room="r", user_id=user, connected_at="t", expires_at=T0 + TTL
        )
    assert not claim(connections, user, "extra", T0)
    connections.release_slot(user, "c0", room="r", expires_at=T0 + TTL)
    assert claim(connections, user, "extra", T0)


def test_given_connections_that_never_got_a_disconnect_when_they_expire_then_their_slots_are_free(
    connections: DynamoConnectionStore,
) -> None:
    user = f"g_GHOST{ulid.new()}"
    assert all(claim(connections, user, f"ghost{n}", T0) for n in range(5))
    assert not claim(connections, user, "early", T0 + TTL - 1)  # one second before they expire
    later = T0 + TTL
    assert [claim(connections, user, f"new{n}", later) for n in range(6)] == [True] * 5 + [False]


def connect(user: dict[str, str], connection_id: str, context: LambdaContext) -> int:
    event = ws("$connect", connection_id, query={"room": "lim-cap"}, user=user)
    return int(ws_connect.handler(event, context)["statusCode"])


def test_disconnect_gives_the_slot_back_through_the_handlers(
    in_region: Callable[..., None], context: LambdaContext
) -> None:
    in_region("us-east-1", template_limits=True)  # 5 connections per user
    user = {"userId": f"g_DISC{ulid.new()}", "name": "Dee"}
    opened = [new_connection_id() for _ in range(5)]
    assert [connect(user, c, context) for c in opened] == [200] * 5
    assert connect(user, new_connection_id(), context) == 429
    ws_disconnect.handler(ws("$disconnect", opened[0]), context)
    assert connect(user, new_connection_id(), context) == 200


def sign_in_from(address: str, context: LambdaContext) -> tuple[int, dict[str, Any], dict[str, str]]:
    event = http("POST", "/session", route="POST /session", body=json.dumps({"name": "Gus"}).encode())
    event["requestContext"]["http"]["sourceIp"] = address
    response = http_api.handler(event, context)
    return response["statusCode"], json.loads(response["body"]), response.get("headers", {})


def test_guest_sign_ins_from_one_address_are_limited_after_the_burst(
    in_region: Callable[..., None], context: LambdaContext
) -> None:
    in_region("eu-west-2", template_limits=True)  # 10 a minute, bursts of 20
    address = f"198.51.100.{ulid.new()[-2:].encode()[0] % 250}"
    answers = [sign_in_from(address, context) for _ in range(50)]
    statuses = [status for status, _, _ in answers]
    assert statuses[:20] == [201] * 20
    assert 429 in statuses[20:]
    _, body, headers = next(answer for answer in answers if answer[0] == 429)
    assert body["error"]["code"] == "rate_limited"
    assert body["error"]["retryAfterMs"] > 0
    assert int(headers["Retry-After"]) >= 1
    assert "token" not in body
    assert sign_in_from("203.0.113.77", context)[0] == 201  # another address has its own budget


def post_as(
    user_id: str, room: str, token_for: Callable[..., str], context: LambdaContext
) -> tuple[int, Any]:
    token = token_for({"userId": user_id, "name": f"Poster {user_id[-6:]}"})
    event = http(
        "POST",
        f"/rooms/{room}/messages",
        route="POST /rooms/{room}/messages",
        params={"room": room},
        body=json.dumps({"id": ulid.new(), "text": "hello"}).encode(),
        token=token,
    )
    response = http_api.handler(event, context)
    return response["statusCode"], json.loads(response["body"])


def test_a_flood_from_fifty_guests_is_limited_while_an_account_keeps_posting(
    in_region: Callable[..., None], context: LambdaContext, token_for: Callable[..., str]
) -> None:
    in_region("us-east-1", template_limits=True)  # the room's guests: 10 a second, bursts of 20
    settings, room = get_settings(), f"lim-flood-{ulid.new().lower()}"
    # Given a clock a minute ahead, so the flood's budget is still spent when the handlers run.
    ahead_ms = int(time.time() * 1000) + 60_000

    def send(user_id: str, name: str) -> int | None:
        """None when stored, else how long the refusal says to wait."""
        try:
            accept_message(
                {"id": ulid.new(ahead_ms), "room": room, "text": "spam"},
                author=Author(user_id=user_id, name=name),
                transport="websocket",
                store=composition.message_store(),
                limiter=composition.rate_limiter(),
                settings=settings,
                now_ms=ahead_ms,
            )
        except RateLimited as refused:
            return refused.retry_after_ms or 0
        return None

    guests = [
        (f"g_FLOOD{n:02d}{ulid.new()}", f"Spammer {chr(ord('a') + n % 26)}{n // 26}") for n in range(50)
    ]
    flood = [send(*guest) for guest in guests for _ in range(2)]
    assert flood.count(None) == settings.guest_room_burst  # one burst for all the room's guests
    assert all(wait is not None and wait > 0 for wait in flood[settings.guest_room_burst :])
    account = "o_account" + ulid.new().lower()
    assert [send(account, "Olu") for _ in range(5)] == [None] * 5
    stored, _ = composition.message_store().list_messages(room, after=None, limit=200)
    assert len(stored) == settings.guest_room_burst + 5  # nothing stored for a refused post

    status, body = post_as(f"g_LATE{ulid.new()}", room, token_for, context)
    assert (status, body["error"]["code"]) == (429, "rate_limited")
    assert body["error"]["retryAfterMs"] > 0
    assert post_as("o_reader" + ulid.new().lower(), room, token_for, context)[0] == 201

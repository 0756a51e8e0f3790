"""The limits against a local stack of its own, started with the template's defaults but a slower
room budget for guests (this machine's local stack cannot post 10 messages a second into one
room while it is also busy with other work; the shared stack raises the guest limits for the
other tests): the connection cap under 30 simultaneous
handshakes with one token, slots given back on close, guest sign-ins metered per source address,
and a flood from 50 fresh guests in one room limited. Each address below is its own loopback
address, so each test has its own sign-in budget, as separate machines would."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from chat import ulid
from stack_definition.local_stack import QUICK, running_stack
from stack_definition.template import load
from tests.e2e.chat import NEAR_LONDON, NEAR_NEW_YORK, Session

ROUNDS = 50  # in each region: the target, 100 tries of 30 simultaneous connects
OVERRIDES = {"GuestMessagesPerSecondPerRoom": "0.5", "GuestRoomBurst": "5"}
_addresses = (f"127.0.{n // 250}.{n % 250 + 2}" for n in itertools.count(1))


@pytest.fixture(scope="module")
def defaults_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    overrides = [f"{name}={value}" for name, value in OVERRIDES.items()]
    options = [*QUICK, "--parameter-overrides", *overrides]
    with running_stack(tmp_path_factory.mktemp("limits-stack"), options) as info:
        yield info


def limit(name: str) -> float:
    return float(OVERRIDES.get(name) or load().context(NEAR_LONDON).parameter(name))


async def sign_in_from(address: str, http_url: str, name: str) -> tuple[int, dict[str, Any], Any]:
    connector = aiohttp.TCPConnector(local_addr=(address, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(f"{http_url}/session", json={"name": name}) as response,
    ):
        return response.status, await response.json(), response.headers


async def session_from(address: str, http_url: str, name: str) -> Session:
    status, body, _ = await sign_in_from(address, http_url, name)
    assert status == 201, body
    return Session(body["token"], body["user"]["id"], body["user"]["name"])


async def try_connect(url: str, room: str, token: str) -> Any:
    """The open socket, or None when the handshake is refused with 429."""
    try:
        return await websockets.connect(f"{url}?room={room}&token={token}")
    except InvalidStatus as refused:
        status = refused.response.status_code
    assert status == 429
    return None


@pytest.mark.parametrize("region", [NEAR_LONDON, NEAR_NEW_YORK])
def test_thirty_simultaneous_connects_with_one_token_never_open_more_than_the_cap(
    defaults_stack: dict[str, Any], region: str
) -> None:
    endpoints = defaults_stack["regions"][region]
    cap = int(limit("MaxConnectionsPerUser"))

    async def scenario() -> list[int]:
        opened_per_round = []
        for _ in range(ROUNDS):  # a new user each round: no round waits for the last one's $disconnect
            ada = await session_from(next(_addresses), endpoints["httpUrl"], "Ada")
            sockets = await asyncio.gather(
                *(try_connect(endpoints["websocketUrl"], "e2e-cap-race", ada.token) for _ in range(30))
            )
            opened = [socket for socket in sockets if socket is not None]
            opened_per_round.append(len(opened))
            await asyncio.gather(*(socket.close() for socket in opened))
        return opened_per_round

    opened_per_round = asyncio.run(scenario())
    assert max(opened_per_round) == cap  # never more, and the cap is reachable
    assert min(opened_per_round) == cap  # a refused handshake never keeps a slot


def test_closing_a_connection_gives_its_slot_back(defaults_stack: dict[str, Any]) -> None:
    endpoints = defaults_stack["regions"][NEAR_LONDON]
    cap = int(limit("MaxConnectionsPerUser"))

    async def scenario() -> None:
        ada = await session_from(next(_addresses), endpoints["httpUrl"], "Ada")
        url = endpoints["websocketUrl"]
        opened = [await try_connect(url, "e2e-cap-close", ada.token) for _ in range(cap)]
        assert None not in opened
        assert await try_connect(url, "e2e-cap-close", ada.token) is None
        await opened[0].close()
        # $disconnect runs after the close, so the slot comes back moments later: try until it does.
        again = None
        for _ in range(200):
            again = await try_connect(url, "e2e-cap-close", ada.token)
            if again is not None:
                break
            await asyncio.sleep(0.05)
        assert again is not None
        assert await try_connect(url, "e2e-cap-close", ada.token) is None  # the cap holds again
        await asyncio.gather(again.close(), *(socket.close() for socket in opened[1:]))

    asyncio.run(scenario())


def test_fifty_guest_sign_ins_from_one_address_are_limited_with_retry_after(
    defaults_stack: dict[str, Any],
) -> None:
    http_url = defaults_stack["regions"][NEAR_LONDON]["httpUrl"]
    burst = int(limit("GuestSignInBurst"))

    async def scenario() -> list[tuple[int, dict[str, Any], Any]]:
        address = next(_addresses)
        return [await sign_in_from(address, http_url, f"Guest {n}") for n in range(50)]

    answers = asyncio.run(scenario())
    statuses = [status for status, _, _ in answers]
    assert statuses[:burst] == [201] * burst
    refused = [(body, headers) for status, body, headers in answers if status == 429]
    assert len(refused) >= 50 - burst - 1  # at most one more earned while signing in
    for body, headers in refused:
        assert body["error"]["code"] == "rate_limited"
        assert body["error"]["retryAfterMs"] > 0
        assert int(headers["Retry-After"]) >= 1
        assert "token" not in body
    assert asyncio.run(sign_in_from(next(_addresses), http_url, "Neighbour"))[0] == 201


def test_a_flood_from_fifty_fresh_guests_in_one_room_is_limited(defaults_stack: dict[str, Any]) -> None:
    http_url = defaults_stack["regions"][NEAR_LONDON]["httpUrl"]
    room = f"e2e-flood-{ulid.new().lower()}"

    async def scenario() -> tuple[list[tuple[int, dict[str, Any]]], float]:
        # fifty guests from ten addresses (five each, within every address's burst)
        addresses = [next(_addresses) for _ in range(10)]
        guests = [await session_from(addresses[n % 10], http_url, f"Flooder {n}") for n in range(50)]

        gate = asyncio.Semaphore(8)  # as many at once as this machine's local stack serves in time

        async def post(guest: Session) -> tuple[int, dict[str, Any]]:
            async with (
                gate,
                aiohttp.ClientSession() as session,
                session.post(
                    f"{http_url}/rooms/{room}/messages",
                    json={"id": ulid.new(), "text": "spam"},
                    headers=guest.headers,
                ) as response,
            ):
                return response.status, await response.json()

        started = time.monotonic()
        answers = list(await asyncio.gather(*(post(guest) for guest in guests for _ in range(2))))
        return answers, time.monotonic() - started

    answers, seconds = asyncio.run(scenario())
    accepted = sum(status == 201 for status, _ in answers)
    refused = [body for status, body in answers if status == 429]
    assert accepted + len(refused) == 100
    assert refused, "50 guests posting at once were not limited"
    for body in refused:
        assert body["error"]["code"] == "rate_limited"
        assert body["error"]["retryAfterMs"] > 0
    # One budget for the room's guests (per guest, all 100 would pass): a burst, then the rate.
    assert accepted <= limit("GuestRoomBurst") + limit("GuestMessagesPerSecondPerRoom") * seconds + 1

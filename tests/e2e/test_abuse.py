"""Protocol abuse and replication faults against the local stack: refused as API Gateway does,
and nothing lost or doubled."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
import websockets

from chat import ulid
from tests.e2e.chat import NEAR_LONDON, NEAR_NEW_YORK, Client, Session, history, join, sign_in

pytestmark = pytest.mark.e2e


async def post_json(
    url: str, body: dict[str, Any], session: Session | None = None
) -> tuple[int, dict[str, Any]]:
    headers = session.headers if session else {}
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as response:
        return response.status, await response.json()


def own_room(name: str) -> str:
    """A room of the test's own: nobody else's presence frames come between its frames."""
    return f"e2e-{name}-{ulid.new().lower()[-8:]}"


async def assert_closed_with(client: Client, code: int) -> None:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await asyncio.wait_for(client.socket.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == code


@pytest.mark.parametrize("size", [33 * 1024, 200 * 1024])
def test_oversized_frames_close_the_connection_and_write_nothing(stack: dict[str, Any], size: int) -> None:
    region = stack["regions"][NEAR_NEW_YORK]

    async def scenario() -> None:
        room = own_room("big")
        client = await join(stack, region["websocketUrl"], room, "ada")
        frame = {
            "action": "sendMessage",
            "room": room,
            "id": ulid.new(),
            "author": "ada",
            "text": "x" * size,
        }
        await client.socket.send(json.dumps(frame))
        await assert_closed_with(client, 1009)
        assert (await history(region["httpUrl"], room, client.session))["messages"] == []

    asyncio.run(scenario())


def test_a_binary_frame_gets_an_error_frame(stack: dict[str, Any]) -> None:
    async def scenario() -> None:
        client = await join(stack, stack["regions"][NEAR_LONDON]["websocketUrl"], own_room("binary"), "ada")
        await client.socket.send(b"\x00\xff binary")
        frame = json.loads(await asyncio.wait_for(client.socket.recv(), 10))
        assert frame["type"] == "error"
        assert frame["code"] == "malformed_json"
        await client.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("shape", "frame"),
    [
        ("a bare array 5,000 deep", "[" * 5000),
        (
            "a sendMessage with a field 3,000 deep",
            '{"action": "sendMessage", "room": "e2e-deep", "author": "ada", "text": "hi", "extra": '
            + "[" * 3000
            + "]" * 3000
            + "}",
        ),
    ],
)
def test_a_frame_nested_deeper_than_python_parses_gets_an_error_frame_and_writes_nothing(
    stack: dict[str, Any], shape: str, frame: str
) -> None:
    """json.loads raises RecursionError, not ValueError, on such a frame: the emulated API Gateway
    must still route it (to $default, having found no action) so that a handler answers."""
    region = stack["regions"][NEAR_NEW_YORK]

    async def scenario() -> None:
        client = await join(stack, region["websocketUrl"], own_room("deep"), "ada")
        await client.socket.send(frame)
        answer = json.loads(await asyncio.wait_for(client.socket.recv(), 10))
        assert answer["type"] == "error", shape
        assert answer["code"] in ("too_deep", "invalid_message"), answer
        assert (await history(region["httpUrl"], "e2e-deep", client.session))["messages"] == []

    asyncio.run(scenario())


def test_a_flood_from_one_connection_is_answered_frame_by_frame_and_the_connection_survives(
    stack: dict[str, Any],
) -> None:
    """The stage allows bursts of 2,000 and 1,000 per second (template.yaml). How many of a flood
    meet the throttle depends on how fast this machine reads them (tests/unit/test_throttle.py
    checks the bucket itself); whatever the split, every frame gets an answer."""

    async def scenario() -> None:
        client = await join(stack, stack["regions"][NEAR_NEW_YORK]["websocketUrl"], own_room("flood"), "ada")
        flood = 4000
        for _ in range(flood):
            await client.socket.send('{"action": "ping"}')
        replies = [json.loads(await asyncio.wait_for(client.socket.recv(), 30)) for _ in range(flood)]
        throttled = sum(r.get("message") == "Too Many Requests" for r in replies)
        answered = sum(r.get("type") == "pong" for r in replies)  # API Gateway and DynamoDB answered
        assert throttled + answered == flood
        ack = await client.send("still connected")
        assert ack["type"] in ("ack", "error")  # the bucket may still be empty: either way, answered
        await client.close()

    asyncio.run(scenario())


def test_clients_cannot_reach_the_management_api(stack: dict[str, Any]) -> None:
    async def scenario() -> None:
        victim = await join(stack, stack["regions"][NEAR_NEW_YORK]["websocketUrl"], own_room("victim"), "ada")
        target = f"/prod/@connections/{'x' * 15}="
        async with aiohttp.ClientSession() as session:
            async with session.post(stack["frontDoorUrl"] + target, data=b"spoof") as response:
                assert response.status in (404, 405)  # the routed name serves only the chat APIs
            async with session.post(
                stack["regions"][NEAR_NEW_YORK]["managementUrl"] + target[5:], data=b"spoof"
            ) as response:
                assert response.status == 403  # unsigned: API Gateway wants IAM (SigV4)
        assert await victim.drain(0.3) == []
        await victim.close()

    asyncio.run(scenario())


def test_paused_replication_delivers_everything_once_resumed(stack: dict[str, Any]) -> None:
    control = f"{stack['frontDoorUrl']}/_local/replication/messages"
    us, eu = stack["regions"][NEAR_NEW_YORK], stack["regions"][NEAR_LONDON]

    async def scenario() -> None:
        ada = await join(stack, us["websocketUrl"], "e2e-paused", "ada")
        bo = await join(stack, eu["websocketUrl"], "e2e-paused", "bo")
        assert (await post_json(control, {"paused": True}))[0] == 200
        try:
            from_us = [(await ada.send(f"us {i}"))["id"] for i in range(3)]
            from_eu = [(await bo.send(f"eu {i}"))["id"] for i in range(3)]
            for message_id in from_us:
                await ada.message(message_id)
            assert {
                m["id"] for m in (await history(eu["httpUrl"], "e2e-paused", bo.session))["messages"]
            } == set(from_eu)
        finally:
            assert (await post_json(control, {"paused": False}))[0] == 200
        for message_id in from_eu:  # each client: every message exactly once
            await ada.message(message_id)
        for message_id in from_us + from_eu:
            await bo.message(message_id)
        for client in (ada, bo):
            assert [f for f in await client.drain() if f.get("type") == "message"] == []
            await client.close()

    asyncio.run(scenario())


def test_one_author_writing_one_id_in_both_regions_converges_to_one_item(stack: dict[str, Any]) -> None:
    control = f"{stack['frontDoorUrl']}/_local/replication/messages"
    us, eu = stack["regions"][NEAR_NEW_YORK], stack["regions"][NEAR_LONDON]
    message_id = ulid.new()

    async def scenario() -> None:
        ada = await sign_in(stack["frontDoorUrl"], "ada")
        assert (await post_json(control, {"paused": True}))[0] == 200
        try:
            for region, text in ((us, "written in virginia"), (eu, "written in london")):
                status, _ = await post_json(
                    f"{region['httpUrl']}/rooms/e2e-race/messages", {"id": message_id, "text": text}, ada
                )
                assert status == 201  # neither region has seen the other's write yet
        finally:
            assert (await post_json(control, {"paused": False}))[0] == 200
        # Nothing announces convergence (an overwrite is not a new message): read until it shows.
        async with asyncio.timeout(15):
            while True:
                pages = [await history(r["httpUrl"], "e2e-race", ada) for r in (us, eu)]
                items = [page["messages"] for page in pages]
                if items[0] == items[1]:
                    break
                await asyncio.sleep(0.1)
        assert len(items[0]) == 1
        assert items[0][0]["id"] == message_id

    asyncio.run(scenario())

"""The heartbeat over a real WebSocket on the local stack: a ping is answered from the region's
messages table, with the id of the room's newest message (docs/api.md), so that a listener can
tell a message it was never pushed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from chat import ulid
from tests.e2e.chat import NEAR_LONDON, NEAR_NEW_YORK, TIMEOUT, Client, join, until_health


async def _pong(client: Client) -> dict[str, Any]:
    """The heartbeat's answer: a pong, an error frame, or API Gateway's own frame (no type)."""
    await client.socket.send(json.dumps({"action": "ping"}))
    return await client.next(lambda f: f.get("type") in ("pong", "error") or "type" not in f)


def test_a_ping_names_the_rooms_newest_message_in_the_region_that_answers(stack: dict[str, Any]) -> None:
    async def scenario() -> None:
        room = f"e2e-heartbeat-{ulid.new().lower()[-8:]}"
        here, there = NEAR_NEW_YORK, NEAR_LONDON
        listener = await join(stack, stack["regions"][here]["websocketUrl"], room, "lin")
        remote = await join(stack, stack["regions"][there]["websocketUrl"], room, "lou")
        # given an empty room, when each listener pings, then its pong names no message
        assert await _pong(listener) == {"type": "pong", "latest": "", "region": here}
        assert await _pong(remote) == {"type": "pong", "latest": "", "region": there}

        # given two messages sent in the room, the newer one last, pushed to both listeners
        sender = await join(stack, stack["regions"][here]["websocketUrl"], room, "sam")
        older, newest = sorted(ulid.new() for _ in range(2))
        for message_id in (older, newest):
            assert (await sender.send("hello", message_id))["type"] == "ack"
        for client in (listener, remote):  # the remote one once replication brought them
            await client.message(older)
            await client.message(newest)

        # when they ping, then each pong names the newest message, from the region that answered
        assert await _pong(listener) == {"type": "pong", "latest": newest, "region": here}
        assert await _pong(remote) == {"type": "pong", "latest": newest, "region": there}
        for client in (listener, remote, sender):
            await client.close()

    asyncio.run(scenario())


async def _control(stack: dict[str, Any], region: str, body: dict[str, Any]) -> dict[str, Any]:
    """The local stack's fault controls (docs/local.md), as a developer sends them."""
    url = f"{stack['frontDoorUrl']}/_local/regions/{region}"
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        answer: dict[str, Any] = await response.json()
        assert response.status == 200, answer
        return answer


async def _healed(stack: dict[str, Any], region: str) -> None:
    assert (await _control(stack, region, {"action": "heal"}))["faults"] == []
    await until_health(stack["statusUrl"], region, healthy=True)


def test_a_ping_to_a_region_whose_dynamodb_fails_is_answered_unavailable_and_pongs_again_after_heal(
    stack: dict[str, Any],
) -> None:
    async def scenario() -> None:
        region = NEAR_NEW_YORK
        listener = await join(
            stack, stack["regions"][region]["websocketUrl"], f"e2e-hb-db-{ulid.new()[-8:].lower()}", "lin"
        )
        # given the region's DynamoDB failing (its API Gateway still answering)
        await _control(stack, region, {"action": "fail", "service": "dynamodb"})
        try:
            # when the listener pings, then the answer is the error frame a client leaves on
            assert await _pong(listener) == {
                "type": "error",
                "id": None,
                "code": "unavailable",
                "message": "this region cannot read its messages: reconnect to another region",
            }
        finally:
            await _healed(stack, region)
        # and once it heals, the same socket's ping is a pong again
        assert await _pong(listener) == {"type": "pong", "latest": "", "region": region}
        await listener.close()

    asyncio.run(scenario())


def test_a_ping_to_a_region_whose_lambda_fails_names_the_message_it_could_not_push(
    stack: dict[str, Any],
) -> None:
    async def scenario() -> None:
        here, there = NEAR_NEW_YORK, NEAR_LONDON
        room = f"e2e-hb-gap-{ulid.new()[-8:].lower()}"
        listener = await join(stack, stack["regions"][here]["websocketUrl"], room, "lin")
        sender = await join(stack, stack["regions"][there]["websocketUrl"], room, "sam")
        # given the listener's region with its functions failing (its table and API Gateway fine)
        await _control(stack, here, {"action": "fail", "service": "lambda"})
        try:
            # when a message is written in the other region
            message_id = ulid.new()
            assert (await sender.send("while you were out", message_id))["type"] == "ack"
            # then, once replication brings it here, the listener's pong names it: a gap
            async with asyncio.timeout(TIMEOUT * 2):
                while (pong := await _pong(listener))["latest"] != message_id:
                    assert pong == {"type": "pong", "latest": "", "region": here}
                    await asyncio.sleep(0.2)  # replication's configured delay: nothing to await here
            assert pong["region"] == here
            assert not [f for f in listener.frames if f.get("type") == "message"]  # never pushed
        finally:
            await _healed(stack, here)
        # and after heal the stream's backlog is pushed: the gap closes
        assert (await listener.message(message_id))["message"]["id"] == message_id
        for client in (listener, sender):
            await client.close()

    asyncio.run(scenario())

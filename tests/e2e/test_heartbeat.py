"""The heartbeat over a real WebSocket on the local stack: a ping is answered from the region's
messages table, with the id of the room's newest message (docs/api.md), so that a listener can
tell a message it was never pushed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from chat import ulid
from tests.e2e.chat import NEAR_LONDON, NEAR_NEW_YORK, Client, join


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

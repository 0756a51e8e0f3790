"""Soak: rounds of clients connect, chat and leave; afterwards every region holds none of their
connections and its memory is back near where it was after a warm-up round; nothing is lost.

Short by default (CI); a longer run: SOAK_SECONDS=300 SOAK_CLIENTS=300 make test ARGS=-k soak."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import aiohttp
import pytest

from chat import ulid
from tests.e2e.chat import Client, join

pytestmark = pytest.mark.e2e
SECONDS = float(os.environ.get("SOAK_SECONDS", "8"))
CLIENTS = int(os.environ.get("SOAK_CLIENTS", "60"))
ROOM_SIZE = 10
RETRIABLE = {"unavailable", "internal_error", "rate_limited"}  # docs/api.md: resend the same id
MAX_GROWTH = 30 * 1024 * 1024  # bytes of resident memory a region may keep after the warm-up


async def region_stats(stack: dict[str, Any]) -> dict[str, dict[str, int]]:
    async with aiohttp.ClientSession() as session:
        stats = {}
        for region, endpoints in stack["regions"].items():
            async with session.get(
                endpoints["managementUrl"].rsplit("/", 1)[0] + "/_local/stats"
            ) as response:
                stats[region] = await response.json()
        return stats


async def send_until_acked(client: Client, text: str) -> dict[str, Any]:
    """As a client does (docs/api.md): a retriable error is answered by resending the same id. A
    cold region under 60 simultaneous senders may answer one `unavailable`; anything else fails."""
    message_id = ulid.new()
    for _ in range(5):
        answer = await client.send(text, message_id)
        if answer["type"] == "ack" or answer.get("code") not in RETRIABLE:
            return answer
        await asyncio.sleep(answer.get("retryAfterMs", 200) / 1000)
    return answer


async def one_round(stack: dict[str, Any], round_number: int) -> int:
    """CLIENTS clients in rooms of ROOM_SIZE, both regions; each sends two messages and must get
    all of its room's messages exactly once. Returns the messages delivered."""
    rooms = [f"soak-{round_number}-{i}" for i in range(max(1, CLIENTS // ROOM_SIZE))]
    clients = await asyncio.gather(
        *(
            join(
                stack,
                stack["frontDoorWebsocketUrl"],
                rooms[i % len(rooms)],
                f"c{i}",
                location=("new-york", "london")[i % 2],
            )
            for i in range(CLIENTS)
        )
    )

    async def send_two(client: Client) -> list[dict[str, Any]]:  # one reader per socket
        return [await send_until_acked(client, f"{client.author} says {n}") for n in range(2)]

    acks = await asyncio.gather(*(send_two(client) for client in clients))
    by_room: dict[str, list[str]] = {}
    for client, pair in zip(clients, acks, strict=True):
        assert [ack["type"] for ack in pair] == ["ack", "ack"]
        by_room.setdefault(client.room, []).extend(ack["id"] for ack in pair)

    async def receive_room(client: Client) -> None:  # one reader per socket
        for message_id in by_room[client.room]:
            await client.message(message_id)

    await asyncio.gather(*(receive_room(client) for client in clients))
    for client in clients:
        assert [f for f in await client.drain(0.05) if f.get("type") == "message"] == []
    await asyncio.gather(*(client.close() for client in clients))
    return sum(len(ids) for ids in by_room.values()) * ROOM_SIZE


async def no_connections_left(
    stack: dict[str, Any], before: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    """Each region's stats once it holds no more connections than `before` the soak (a socket
    another test left open is not the soak's)."""
    # $disconnect runs after each close, asynchronously: read until both regions are back.
    async with asyncio.timeout(30):
        while True:
            stats = await region_stats(stack)
            if all(stats[r]["connections"] <= before[r]["connections"] for r in stats):
                return stats
            await asyncio.sleep(0.1)


def test_clients_come_and_go_and_the_regions_return_to_where_they_started(stack: dict[str, Any]) -> None:
    async def scenario() -> None:
        before = await region_stats(stack)
        await one_round(stack, 0)  # warm-up: imports, caches, pools
        baseline = await no_connections_left(stack, before)
        delivered, rounds, started = 0, 0, time.monotonic()
        while time.monotonic() - started < SECONDS:
            rounds += 1
            delivered += await one_round(stack, rounds)
        after = await no_connections_left(stack, before)
        print(
            f"soak: {rounds} rounds of {CLIENTS} clients, {delivered} deliveries; rss "
            + ", ".join(
                f"{r} {baseline[r]['rssBytes'] >> 20}->{after[r]['rssBytes'] >> 20} MiB" for r in after
            )
        )
        for region in after:
            assert after[region]["rssBytes"] - baseline[region]["rssBytes"] < MAX_GROWTH

    asyncio.run(scenario())

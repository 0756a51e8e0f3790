"""A drill listener (it sends nothing but the heartbeat) whose region goes silent: the connection
stays open and nothing answers. It notices by the missing pong, leaves the region, reconnects to
the other one, and catches up from history with what it missed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import aiohttp
import pytest

from chat import ulid
from chatclient.judge import Timing
from drill.clients import SyntheticClient
from tests.drill.fake_regions import FakeRegions, fake_regions


@pytest.fixture
def regions() -> Iterator[FakeRegions]:
    with fake_regions() as fake:
        fake.deliver = False  # what happens meanwhile reaches the idle client only through history
        yield fake


@pytest.mark.timeout(60)
def test_a_listener_notices_a_silent_region_by_its_heartbeat_and_catches_up_elsewhere(
    regions: FakeRegions,
) -> None:
    silent, other = "us-east-1", "eu-west-2"
    client = SyntheticClient(
        name="idle",
        location=silent,
        room="lobby",
        ws_url=regions.urls[silent][0],
        http_url=regions.urls[silent][1],
        rate=0.0,
        direct=dict(regions.urls),
        timing=Timing(heartbeat_ms=300, active_heartbeat_ms=300, pong_timeout_ms=500),
    )
    missed = {"id": ulid.new(), "room": "lobby", "text": "written while us-east-1 was silent"}

    async def scenario() -> None:
        stop = asyncio.Event()
        async with aiohttp.ClientSession() as session:
            run = asyncio.create_task(client.run(stop, session))
            async with asyncio.timeout(20):
                await client._connected.wait()
                assert client.region == silent
                # given its region answers pongs, when it goes silent and a message is written elsewhere
                regions.stalled.add(silent)
                regions.messages.append(
                    missed | {"author": "bo", "authorId": "g_bo", "acceptedRegion": other}
                )
                while missed["id"] not in client.seen:
                    await asyncio.sleep(0.05)  # no event marks "shown": look again shortly
            stop.set()
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)

    asyncio.run(scenario())

    # then it left by the heartbeat's rule, moved to the other region, and holds the message, from
    # history; the region it left is marked sick
    (outage,) = client.outages
    assert outage.reason == "left: no pong"
    assert outage.end is not None
    assert outage.region == other
    assert [(region, why) for _, region, why in client.leaves] == [(silent, "no pong")]
    assert client.sick.sick(silent)
    assert [region for _, region in client.connections] == [silent, other]
    assert client.seen[missed["id"]]["via"] == "history"

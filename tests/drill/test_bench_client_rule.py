"""The benchmarks' chat client keeps the clients' rule too: against a region that answers every
send with `unavailable` it resends once on the same socket, then gives up with the reason instead
of resending forever (a benchmark measures one region: there is nowhere else to go)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from bench.chatclients import ChatClient, Tracker
from chat import ulid
from tests.drill.fake_regions import FakeRegions, fake_regions


@pytest.fixture
def regions() -> Iterator[FakeRegions]:
    with fake_regions() as fake:
        yield fake


@pytest.mark.timeout(30)
def test_a_bench_client_resends_once_then_stops_with_the_reason(regions: FakeRegions) -> None:
    failing = "us-east-1"
    ws_url, http_url = regions.urls[failing]
    received: list[dict[str, object]] = []

    async def scenario() -> str:
        client = await ChatClient.connect(
            {"websocketUrl": ws_url, "httpUrl": http_url}, "lobby", "bench", Tracker(), watched=False
        )
        original = client.judge.received

        def spy(frame: dict[str, object]) -> object:
            received.append(frame)
            return original(frame)

        client.judge.received = spy  # type: ignore[method-assign, assignment]
        # given a region whose backend fails every send, when the client sends one message
        regions.failing.add(failing)
        await client.send(ulid.new(), "hello")
        async with asyncio.timeout(10):
            while client.left is None:
                await asyncio.sleep(0.05)  # no event marks "left": look again shortly
        with pytest.raises(RuntimeError) as stopped:
            await client.send(ulid.new(), "again")
        await client.close()
        return str(stopped.value)

    reason = asyncio.run(scenario())

    # then it sent the message twice (the first try and one resend), and stopped saying why
    assert [frame["code"] for frame in received] == ["unavailable", "unavailable"]
    assert "left the region: unavailable, twice in a row" in reason

"""A third region is one line of configuration: a local stack started with three regions serves
each, replicates every write to the other two, routes Tokyo to Tokyo, lets a region be cut off
from the others and catch up, and the drill against the third region loses nothing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from stack_definition.local_stack import QUICK, running_stack
from stack_definition.repository import ROOT
from tests.e2e.chat import TIMEOUT, Client, history, join, until_health
from tests.e2e.conftest import GENEROUS_GUEST_LIMITS
from tests.e2e.test_local_stack import route53

pytestmark = pytest.mark.e2e

REGIONS = ("us-east-1", "eu-west-2", "ap-northeast-1")
TOKYO = "ap-northeast-1"


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    options = [*QUICK, "--regions", ",".join(REGIONS), "--parameter-overrides", *GENEROUS_GUEST_LIMITS]
    with running_stack(tmp_path_factory.mktemp("three-regions"), options) as info:
        yield info


async def _in_each_region(stack: dict[str, Any], room: str) -> dict[str, Client]:
    """One client connected to each region's own WebSocket API."""
    return {
        region: await join(stack, endpoints["websocketUrl"], room, f"user-{region}")
        for region, endpoints in stack["regions"].items()
    }


async def _replication(stack: dict[str, Any], **settings: Any) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{stack['frontDoorUrl']}/_local/replication/messages", json=settings) as response,
    ):
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body


def test_stack_json_lists_all_three_regions_in_the_two_region_shape(three: dict[str, Any]) -> None:
    assert list(three["regions"]) == list(REGIONS)
    for region, endpoints in three["regions"].items():
        assert set(endpoints) == {"httpUrl", "websocketUrl", "managementUrl", "healthCheckId", "pid", "log"}
        assert endpoints["log"].endswith(f"{region}.log")
    ports = {
        int(url.rsplit(":", 1)[1].split("/")[0])
        for e in three["regions"].values()
        for url in e.values()
        if isinstance(url, str) and url.startswith(("http://", "ws://"))
    }
    assert len(ports) == 2 * len(REGIONS)  # each region its own HTTP and WebSocket API


def test_a_message_sent_in_any_region_is_shown_once_in_every_region(three: dict[str, Any]) -> None:
    async def scenario() -> None:
        # given a client in each of the three regions, in one room
        clients = await _in_each_region(three, "e2e-three-pairs")
        # when each sends a message in its own region
        acks = {region: await client.send(f"from {region}") for region, client in clients.items()}
        assert {region: ack["acceptedRegion"] for region, ack in acks.items()} == {r: r for r in REGIONS}
        # then every client is shown every message (its own too), delivered by its own region, once
        for region, client in clients.items():
            for sender, ack in acks.items():
                pushed = await client.message(ack["id"])
                assert pushed["deliveredBy"] == region
                assert pushed["message"]["acceptedRegion"] == sender
        for client in clients.values():
            extra = [f for f in await client.drain() if f.get("type") == "message"]
            assert extra == [], extra
            await client.close()

    asyncio.run(scenario())


def test_tokyo_is_routed_to_the_tokyo_region_and_to_the_next_nearest_when_it_fails(
    three: dict[str, Any],
) -> None:
    check = three["regions"][TOKYO]["healthCheckId"]

    async def scenario() -> None:
        user = await join(three, three["frontDoorWebsocketUrl"], "e2e-tokyo", "yuki", location="tokyo")
        assert user.region == TOKYO
        await user.close()
        route53(three).update_health_check(HealthCheckId=check, Inverted=True)
        try:
            await until_health(three["statusUrl"], TOKYO, healthy=False)
            moved = await join(three, three["frontDoorWebsocketUrl"], "e2e-tokyo", "ken", location="tokyo")
            assert moved.region == "us-east-1"  # 150 ms from Tokyo, against London's 215
            await moved.close()
        finally:
            route53(three).update_health_check(HealthCheckId=check, Inverted=False)
            await until_health(three["statusUrl"], TOKYO, healthy=True)

    asyncio.run(scenario())


def test_a_region_cut_off_from_the_others_keeps_serving_and_catches_up_when_let_back(
    three: dict[str, Any],
) -> None:
    room = "e2e-three-partition"

    async def scenario() -> None:
        clients = await _in_each_region(three, room)
        us, eu, tokyo = (clients[region] for region in REGIONS)
        # given Tokyo cut off from the other two regions
        status = await _replication(three, cutOffRegions=[TOKYO])
        assert status["cutOffRegions"] == [TOKYO]
        try:
            # when each side writes
            from_tokyo = await tokyo.send("written while cut off")
            from_us = await us.send("written on the other side")
            assert from_tokyo["acceptedRegion"] == TOKYO  # the cut-off region still serves
            # then the regions still joined replicate to each other
            assert (await eu.message(from_us["id"]))["deliveredBy"] == "eu-west-2"
            # and what crosses the cut waits: both writes are held for Tokyo's side of it
            held = await _replication(three)
            assert held["pending"] >= 3  # Tokyo's write for 2 regions, us-east-1's for Tokyo
            reader = tokyo.session
            assert from_us["id"] not in [
                m["id"] for m in (await history(three["regions"][TOKYO]["httpUrl"], room, reader))["messages"]
            ]
        finally:
            await _replication(three, cutOffRegions=[])
        # when Tokyo is let back, each side is shown the other's write
        assert (await tokyo.message(from_us["id"]))["deliveredBy"] == TOKYO
        assert (await us.message(from_tokyo["id"]))["deliveredBy"] == "us-east-1"
        assert (await eu.message(from_tokyo["id"]))["deliveredBy"] == "eu-west-2"
        shown = {
            TOKYO: [from_us["id"]],
            "us-east-1": [from_tokyo["id"]],
            "eu-west-2": [from_us["id"], from_tokyo["id"]],
        }
        # and the three histories converge
        async with asyncio.timeout(TIMEOUT):
            while True:
                held_by = [
                    [m["id"] for m in (await history(e["httpUrl"], room, us.session))["messages"]]
                    for e in three["regions"].values()
                ]
                if held_by[0] == held_by[1] == held_by[2] and len(held_by[0]) == 2:
                    break
                await asyncio.sleep(0.2)
        assert sorted(held_by[0]) == sorted([from_tokyo["id"], from_us["id"]])
        # and every client was shown both writes exactly once (its own among them)
        for region, client in clients.items():
            shown[region] += [f["message"]["id"] for f in await client.drain() if f.get("type") == "message"]
            assert sorted(shown[region]) == sorted([from_tokyo["id"], from_us["id"]]), region
            await client.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("mode", ["kill", "invert"])
def test_the_drill_against_the_third_region_loses_nothing_and_restores_it(
    three: dict[str, Any], tmp_path: Path, mode: str
) -> None:
    output = tmp_path / f"drill-{TOKYO}-{mode}.json"
    completed = subprocess.run(
        [
            *(sys.executable, "-m", "drill", "--state-dir", three["stateDir"]),
            *("--region", TOKYO, "--mode", mode, "--hold", "3", "--warmup", "1", "--cooldown", "1"),
            *("--clients", "3", "--rate", "2", "--listeners", "3", "--probe-interval", "0.2"),
            *("--output", str(output)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads(output.read_text())
    assert (report["region"], report["mode"]) == (TOKYO, mode)
    assert report["sent"] > 0
    assert (report["lost"], report["duplicated"], report["unacked"]) == (0, 0, 0)
    assert report["restored"] is True
    assert report["histories"]["equal"] is True
    assert set(report["histories"]["messages"]) == set(REGIONS)
    assert report["verdict"] == "PASS", report["failures"]
    # The clients were spread over all three regions' locations, Tokyo's among them.
    assert {c["location"] for c in report["clients"]} >= {"tokyo", "london"}
    order = {event["event"]: event["t"] for event in report["timeline"]}
    assert order["took_out"] <= order["detected"] < order["recovered"]
    assert order["took_out"] <= order["rerouted"]

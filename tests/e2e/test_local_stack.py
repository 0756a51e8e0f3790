"""The local two-region stack through real protocols: WebSockets, HTTP, the Route 53 API."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import boto3
import pytest

from stack_definition.routing import ROUTE53_REGION
from tests.e2e.chat import NEAR_LONDON, NEAR_NEW_YORK, Client, history, join, sign_in, until_health

pytestmark = pytest.mark.e2e


def route53(stack: dict[str, Any]) -> Any:
    return boto3.client(
        "route53",
        endpoint_url=stack["awsEndpointUrl"],
        region_name=ROUTE53_REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


async def status(stack: dict[str, Any]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(stack["statusUrl"]) as response:
        body: dict[str, Any] = await response.json()
        return body


def test_clients_in_two_regions_each_get_the_others_message_exactly_once(stack: dict[str, Any]) -> None:
    async def scenario() -> None:
        us, eu = stack["regions"][NEAR_NEW_YORK], stack["regions"][NEAR_LONDON]
        ada = await join(stack, us["websocketUrl"], "e2e-two-regions", "ada")
        bo = await join(stack, eu["websocketUrl"], "e2e-two-regions", "bo")
        ack_ada = await ada.send("hello from virginia")
        ack_bo = await bo.send("hello from london")
        assert ack_ada["acceptedRegion"] == NEAR_NEW_YORK
        assert ack_bo["acceptedRegion"] == NEAR_LONDON

        for client, region in ((ada, NEAR_NEW_YORK), (bo, NEAR_LONDON)):
            for ack in (ack_ada, ack_bo):
                frame = await client.message(ack["id"])
                assert frame["deliveredBy"] == region
                assert frame["message"]["acceptedRegion"] == ack["acceptedRegion"]
            extra = await client.drain()
            assert [f for f in extra if f.get("type") == "message"] == []  # exactly once

        for region in (us, eu):
            page = await history(region["httpUrl"], "e2e-two-regions", ada.session)
            assert {m["id"] for m in page["messages"]} == {ack_ada["id"], ack_bo["id"]}
        await ada.close()
        await bo.close()

    asyncio.run(scenario())


def test_the_front_door_sends_each_client_to_its_nearest_region(stack: dict[str, Any]) -> None:
    async def scenario() -> None:
        virginia = await join(stack, stack["frontDoorWebsocketUrl"], "e2e-near", "ada", location="new-york")
        london = await join(stack, stack["frontDoorWebsocketUrl"], "e2e-near", "bo", location="london")
        assert (virginia.region, london.region) == (NEAR_NEW_YORK, NEAR_LONDON)
        assert (await virginia.send("hi"))["acceptedRegion"] == NEAR_NEW_YORK
        assert (await london.send("hi"))["acceptedRegion"] == NEAR_LONDON
        await virginia.close()
        await london.close()

    asyncio.run(scenario())


async def connections_in(stack: dict[str, Any], region: str) -> int:
    url = stack["regions"][region]["managementUrl"].rsplit("/", 1)[0] + "/_local/stats"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        count: int = (await response.json())["connections"]
        return count


def test_a_client_that_vanishes_behind_the_front_door_leaves_no_connection_in_its_region(
    stack: dict[str, Any],
) -> None:
    async def scenario() -> None:
        # given a client connected through the front door
        before = await connections_in(stack, NEAR_NEW_YORK)
        client = await join(stack, stack["frontDoorWebsocketUrl"], "e2e-vanish", "ada", location="new-york")
        assert await connections_in(stack, NEAR_NEW_YORK) == before + 1
        # when it vanishes without a close frame (a laptop lid shut, a process killed)
        client.socket.transport.abort()
        # then its region lets the connection go, as API Gateway does when the client's TCP ends
        async with asyncio.timeout(15):
            while await connections_in(stack, NEAR_NEW_YORK) != before:
                await asyncio.sleep(0.1)

    asyncio.run(scenario())


def test_inverting_a_health_check_moves_new_clients_to_the_other_region(stack: dict[str, Any]) -> None:
    check = stack["regions"][NEAR_NEW_YORK]["healthCheckId"]
    api = route53(stack)

    async def scenario() -> None:
        before = await join(
            stack, stack["frontDoorWebsocketUrl"], "e2e-invert", "ada", location=NEAR_NEW_YORK
        )
        assert before.region == NEAR_NEW_YORK
        api.update_health_check(HealthCheckId=check, Inverted=True)
        try:
            await until_health(stack["statusUrl"], NEAR_NEW_YORK, healthy=False)
            assert (await status(stack))["regions"][NEAR_NEW_YORK]["inverted"] is True
            after = await join(
                stack, stack["frontDoorWebsocketUrl"], "e2e-invert", "bo", location=NEAR_NEW_YORK
            )
            assert after.region == NEAR_LONDON
            # Like a DNS change, inversion leaves open connections where they are, still working.
            ack = await before.send("still here")
            assert ack["acceptedRegion"] == NEAR_NEW_YORK
            assert (await after.message(ack["id"]))["deliveredBy"] == NEAR_LONDON
            await after.close()
        finally:
            api.update_health_check(HealthCheckId=check, Inverted=False)
            await until_health(stack["statusUrl"], NEAR_NEW_YORK, healthy=True)
        await before.close()

    asyncio.run(scenario())


def test_a_killed_region_fails_its_health_check_and_routing_moves(stack: dict[str, Any]) -> None:
    async def control(action: str) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{stack['frontDoorUrl']}/_local/regions/{NEAR_LONDON}", json={"action": action}
            ) as response,
        ):
            assert response.status == 200
            body: dict[str, Any] = await response.json()
            return body

    async def scenario() -> None:
        londoner = await join(stack, stack["frontDoorWebsocketUrl"], "e2e-kill", "bo", location="london")
        assert londoner.region == NEAR_LONDON
        assert not (await control("stop"))["running"]  # killed, as an outage: no restart
        try:
            await until_health(stack["statusUrl"], NEAR_LONDON, healthy=False)
            with pytest.raises(Exception, match=r"1006|no close frame|closed"):
                await londoner.send("into the void")
            moved = await Client.connect(
                stack["frontDoorWebsocketUrl"], "e2e-kill", londoner.session, location="london"
            )
            assert moved.region == NEAR_NEW_YORK
            assert (await moved.send("from the survivor"))["acceptedRegion"] == NEAR_NEW_YORK
            await moved.close()
        finally:
            assert (await control("start"))["running"]
            await until_health(stack["statusUrl"], NEAR_LONDON, healthy=True)
        back = await Client.connect(
            stack["frontDoorWebsocketUrl"], "e2e-kill", londoner.session, location="london"
        )
        assert back.region == NEAR_LONDON
        await back.close()

    asyncio.run(scenario())


def test_a_client_that_dropped_catches_up_from_history_with_nothing_missing(stack: dict[str, Any]) -> None:
    async def scenario() -> None:
        us, eu = stack["regions"][NEAR_NEW_YORK], stack["regions"][NEAR_LONDON]
        ada = await join(stack, us["websocketUrl"], "e2e-catch-up", "ada")
        watcher = await join(stack, us["websocketUrl"], "e2e-catch-up", "cy")
        bo = await join(stack, eu["websocketUrl"], "e2e-catch-up", "bo")
        seen = (await ada.send("before the drop"))["id"]
        await ada.close()
        missed = [(await bo.send(f"while ada was away {i}"))["id"] for i in range(3)]
        for message_id in missed:  # pushed in us-east-1 once replicated: now its history has them
            await watcher.message(message_id)

        ada = await Client.connect(us["websocketUrl"], "e2e-catch-up", ada.session)  # signed in still
        page = await history(us["httpUrl"], "e2e-catch-up", ada.session, after=seen)

        assert [m["id"] for m in page["messages"]] == missed
        assert page["region"] == NEAR_NEW_YORK
        assert page["next"] is None
        for client in (ada, watcher, bo):
            await client.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("via", ["frontDoor", "region"])
def test_a_refused_handshake_answers_the_regions_json_error(stack: dict[str, Any], via: str) -> None:
    url = (
        stack["frontDoorWebsocketUrl"]
        if via == "frontDoor"
        else stack["regions"][NEAR_NEW_YORK]["websocketUrl"]
    ).replace("ws", "http", 1)
    handshake = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
    }

    async def scenario() -> None:
        token = (await sign_in(stack["frontDoorUrl"], "ada")).token
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, params={"token": token}, headers=handshake) as response,  # no room
        ):
            assert response.status == 400
            body = json.loads(await response.text())
            assert body["error"]["code"] == "missing_field"

    asyncio.run(scenario())


@pytest.mark.parametrize("via", ["frontDoor", "region"])
@pytest.mark.parametrize(("method", "path"), [("GET", "/nowhere"), ("DELETE", "/rooms/lobby/messages")])
def test_a_path_or_method_no_route_serves_gets_api_gateways_own_404(
    stack: dict[str, Any], via: str, method: str, path: str
) -> None:
    base = stack["frontDoorUrl"] if via == "frontDoor" else stack["regions"][NEAR_LONDON]["httpUrl"]

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session, session.request(method, base + path) as response:
            assert response.status == 404
            assert await response.json() == {"message": "Not Found"}

    asyncio.run(scenario())

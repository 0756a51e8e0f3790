"""Gray failures on the local stack, as a user sees them: a region whose DynamoDB or Lambda fails
(`POST /_local/regions/<region>` with `{"action": "fail", "service": ...}`) keeps its APIs up and
answers with errors; Route 53's check takes it out; after `heal` it serves again, its replica
caught up and its stream's backlog delivered."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import boto3
import pytest
from websockets.exceptions import InvalidStatus

from chat import ulid
from localcloud.stack.cli import control_commands
from stack_definition.template import MESSAGES, load, table_names
from tests.e2e.chat import NEAR_LONDON, NEAR_NEW_YORK, TIMEOUT, Client, history, join, sign_in, until_health

pytestmark = pytest.mark.e2e


async def control(stack: dict[str, Any], region: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    url = f"{stack['frontDoorUrl']}/_local/regions/{region}"
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        answer: dict[str, Any] = await response.json()
        return response.status, answer


@contextlib.asynccontextmanager
async def failing(stack: dict[str, Any], region: str, service: str) -> AsyncIterator[dict[str, Any]]:
    """The region with `service` failing, healed (and healthy again) afterwards."""
    status, answer = await control(stack, region, {"action": "fail", "service": service})
    assert status == 200, answer
    try:
        yield answer
    finally:
        status, healed = await control(stack, region, {"action": "heal"})
        assert (status, healed["faults"]) == (200, [])
        await until_health(stack["statusUrl"], region, healthy=True)


async def get(url: str, **kwargs: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, **kwargs) as response:
        return response.status, await response.json(content_type=None)


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Await a state of the stack (no assertion about how long it takes)."""
    try:
        async with asyncio.timeout(TIMEOUT * 4):
            while not await check():
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise AssertionError(f"never: {what}") from None


def test_fail_answers_the_region_with_its_faults_and_a_bad_request_names_the_valid_ones(
    stack: dict[str, Any],
) -> None:
    async def scenario() -> None:
        status, answer = await control(stack, NEAR_LONDON, {"action": "fail", "service": "s3"})
        assert status == 400
        assert "dynamodb" in answer["error"]["message"]
        assert "lambda" in answer["error"]["message"]
        status, answer = await control(stack, NEAR_LONDON, {"action": "break"})
        assert status == 400
        assert all(action in answer["error"]["message"] for action in ("stop", "start", "fail", "heal"))

        async with failing(stack, NEAR_LONDON, "lambda") as answer:
            assert answer["region"] == NEAR_LONDON
            assert answer["running"] is True
            assert answer["faults"] == ["lambda"]
            _, both = await control(stack, NEAR_LONDON, {"action": "fail", "service": "dynamodb"})
            assert both["faults"] == ["dynamodb", "lambda"]
            _, status_page = await get(stack["statusUrl"])
            assert status_page["faults"][NEAR_LONDON] == ["dynamodb", "lambda"]
            assert status_page["faults"][NEAR_NEW_YORK] == []
        _, status_page = await get(stack["statusUrl"])
        assert status_page["faults"][NEAR_LONDON] == []

    asyncio.run(scenario())


def test_a_region_whose_dynamodb_fails_answers_unavailable_fails_its_health_check_and_is_routed_around(
    stack: dict[str, Any],
) -> None:
    room = "e2e-gray-dynamodb"
    us = stack["regions"][NEAR_NEW_YORK]

    async def scenario() -> None:
        # given a client connected to us-east-1, and one in London
        ada = await join(stack, us["websocketUrl"], room, "ada")
        bo = await join(stack, stack["regions"][NEAR_LONDON]["websocketUrl"], room, "bo")
        async with failing(stack, NEAR_NEW_YORK, "dynamodb"):
            # when us-east-1's DynamoDB fails: Route 53's check sees it
            await until_health(stack["statusUrl"], NEAR_NEW_YORK, healthy=False)
            # then the open socket stays open, and a send there is refused as unavailable
            refused = await ada.send("into a failing table")
            assert (refused["type"], refused["code"]) == ("error", "unavailable")
            # and a listener's heartbeat (it reads this region's table) fails too
            await ada.socket.send(json.dumps({"action": "ping"}))
            beat = await ada.next(lambda f: f.get("type") in ("pong", "error") and f.get("id") is None)
            assert (beat["type"], beat["code"]) == ("error", "unavailable")
            # and its /health says so (once the SDK's retries give up)
            await eventually(lambda: health_is(us["httpUrl"], 503), "us-east-1's /health answers 503")
            # and new clients are routed to London
            moved = await join(stack, stack["frontDoorWebsocketUrl"], room, "cy", location="new-york")
            assert moved.region == NEAR_LONDON
            # and what London writes meanwhile waits for us-east-1's replica
            written = await bo.send("written in london during the fault")
            assert written["type"] == "ack"
            await moved.message(written["id"])
            await moved.close()
        # after heal, us-east-1 has caught up: both histories are equal, and ada gets the message
        await ada.message(written["id"])
        reader = ada.session
        await eventually(
            lambda: histories_equal(stack, room, reader), "both regions hold the same history of the room"
        )
        page = await history(us["httpUrl"], room, reader)
        assert written["id"] in [m["id"] for m in page["messages"]]
        assert (await ada.send("back"))["type"] == "ack"
        await ada.close()
        await bo.close()

    asyncio.run(scenario())


async def health_is(http_url: str, status: int) -> bool:
    try:
        answer, _ = await get(f"{http_url}/health", timeout=aiohttp.ClientTimeout(total=15))
    except (aiohttp.ClientError, TimeoutError):
        return False
    return answer == status


async def histories_equal(stack: dict[str, Any], room: str, reader: Any) -> bool:
    pages = [await history(region["httpUrl"], room, reader) for region in stack["regions"].values()]
    ids = [[m["id"] for m in page["messages"]] for page in pages]
    return all(each == ids[0] for each in ids)


def test_a_region_whose_lambda_fails_answers_api_gateways_errors_and_delivers_its_backlog_after_heal(
    stack: dict[str, Any],
) -> None:
    room = "e2e-gray-lambda"
    us = stack["regions"][NEAR_NEW_YORK]

    async def scenario() -> None:
        # given a listener connected to us-east-1, and a writer in London
        ada = await join(stack, us["websocketUrl"], room, "ada")
        bo = await join(stack, stack["regions"][NEAR_LONDON]["websocketUrl"], room, "bo")
        session = await sign_in(stack["frontDoorUrl"], "cy")
        async with failing(stack, NEAR_NEW_YORK, "lambda"):
            # when us-east-1's Lambda fails: a frame gets API Gateway's bare error frame
            await ada.socket.send(
                json.dumps({"action": "sendMessage", "room": room, "id": ulid.new(), "text": "lost"})
            )
            bare = await ada.next(lambda f: "message" in f and "type" not in f)
            assert bare["message"] == "Internal server error"
            assert set(bare) == {"message", "connectionId", "requestId"}
            # and HTTP gets API Gateway's 500
            status, body = await get(f"{us['httpUrl']}/rooms/{room}/messages", headers=session.headers)
            assert (status, body) == (500, {"message": "Internal Server Error"})
            # and a new connection is refused with a 500
            with pytest.raises(InvalidStatus, match="HTTP 500"):
                await Client.connect(us["websocketUrl"], room, session)
            # and the health check takes the region out
            await until_health(stack["statusUrl"], NEAR_NEW_YORK, healthy=False)
            # while London's messages reach us-east-1's table but no function pushes them
            written = [(await bo.send(f"during the fault {n}"))["id"] for n in range(3)]
            await eventually(
                lambda: asyncio.to_thread(lambda: set(written) <= set(table_ids(stack, NEAR_NEW_YORK, room))),
                "London's messages replicated to us-east-1's table",
            )
            # and the listener's heartbeat (no function) still answers, its latest id showing the gap
            await ada.socket.send(json.dumps({"action": "ping"}))
            pong = await ada.next(lambda f: f.get("type") == "pong")
            assert pong["latest"] == max(written)
        # after heal the stream's backlog reaches the listener, in order, once each
        pushed = [(await ada.message(message_id))["message"]["id"] for message_id in written]
        assert pushed == written
        extra = await ada.drain()
        assert [f for f in extra if f.get("type") == "message" and f["message"]["id"] in written] == []
        await ada.close()
        await bo.close()

    asyncio.run(scenario())


def table_ids(stack: dict[str, Any], region: str, room: str) -> list[str]:
    """The message ids of the room in the region's replica, read at the AWS endpoint (while the
    region's Lambda fails, its HTTP API cannot read them: a function serves it)."""
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=stack["awsEndpointUrl"],
        region_name=region,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    table = table_names(load())[MESSAGES]
    items = dynamodb.query(
        TableName=table,
        KeyConditionExpression="pk = :room",
        ExpressionAttributeValues={":room": {"S": f"room#{room}"}},
    )["Items"]
    return [item["id"]["S"] for item in items]


def test_the_printed_fail_and_heal_commands_work_as_pasted_in_a_clean_shell(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    fail_dynamodb, fail_lambda, heal = control_commands(stack, NEAR_LONDON)

    def paste(command: str) -> dict[str, Any]:
        pasted = subprocess.run(
            ["sh", "-c", command],
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert pasted.returncode == 0, f"{command}\n{pasted.stderr}"
        answer: dict[str, Any] = json.loads(pasted.stdout)
        return answer

    try:
        assert paste(fail_lambda)["faults"] == ["lambda"]
        assert paste(fail_dynamodb)["faults"] == ["dynamodb", "lambda"]
    finally:
        assert paste(heal)["faults"] == []
        asyncio.run(until_health(stack["statusUrl"], NEAR_LONDON, healthy=True))


def test_a_failing_region_whose_process_dies_comes_back_still_failing(stack: dict[str, Any]) -> None:
    state = Path(stack["stateDir"])
    london = stack["regions"][NEAR_LONDON]
    faults_url = london["managementUrl"].rsplit("/", 1)[0] + "/_local/faults"

    async def scenario() -> None:
        async with failing(stack, NEAR_LONDON, "lambda") as answer:
            # when the failing region's process dies unasked
            os.kill(answer["pid"], signal.SIGKILL)
            await eventually(
                lambda: asyncio.to_thread(lambda: restarted(state, answer["pid"])),
                "the supervisor started London again",
            )
            # then it comes back with its fault: its process says so, and its API answers 500
            _, said = await get(faults_url)
            assert said == {"faults": ["lambda"]}
            status, body = await get(f"{london['httpUrl']}/health")
            assert (status, body) == (500, {"message": "Internal Server Error"})

    asyncio.run(scenario())


def restarted(state: Path, old_pid: int) -> bool:
    pid = json.loads((state / "stack.json").read_text())["regions"][NEAR_LONDON]["pid"]
    return pid not in (old_pid, None)

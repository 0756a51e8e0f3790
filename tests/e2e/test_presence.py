"""Presence and typing across the two local regions, as users see them: `GET /rooms/{room}/presence`
in each region, `enter`/`leave` frames (once per user, not per tab), typing that crosses regions,
a region killed (its users leave everywhere else) and brought back (nobody listed who is not
connected), and a paused replication (the regions agree once it resumes)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from chat import ulid
from tests.e2e.chat import (
    NEAR_LONDON,
    NEAR_NEW_YORK,
    TIMEOUT,
    Client,
    Session,
    join,
    sign_in,
    until_health,
    until_regions_count_each_other,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def regions_count_each_other(stack: dict[str, Any]) -> None:
    asyncio.run(until_regions_count_each_other(stack))


# A region that stops beating is dead to the others after 40 s, and they push `leave` at their
# next beat (every 15 s): well within this, on any machine. No assertion is about the time.
REGION_GONE = 120.0


def new_room(name: str) -> str:
    return f"e2e-{name}-{ulid.new().lower()[-8:]}"


async def presence(http_url: str, room: str, reader: Session) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{http_url}/rooms/{room}/presence", headers=reader.headers) as response,
    ):
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body


def listing(*clients: Client) -> list[dict[str, str]]:
    members = [{"id": c.session.user_id, "name": c.session.name} for c in clients]
    return sorted(members, key=lambda m: (m["name"].casefold(), m["id"]))


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = TIMEOUT * 4) -> None:
    try:
        async with asyncio.timeout(within):
            while not await check():
                await asyncio.sleep(0.2)
    except TimeoutError:
        pytest.fail(f"never: {what}")


async def lists_exactly(stack: dict[str, Any], room: str, reader: Session, *clients: Client) -> bool:
    """Whether every region lists exactly these clients' users, each once."""
    for region in stack["regions"].values():
        seen = await presence(region["httpUrl"], room, reader)
        if seen["members"] != listing(*clients) or seen["count"] != len(listing(*clients)):
            return False
    return True


async def frame_within(
    client: Client, match: Callable[[dict[str, Any]], bool], within: float
) -> dict[str, Any]:
    """The first frame that matches, however long up to `within` (Client.next gives up sooner)."""
    for index, frame in enumerate(client.frames):
        if match(frame):
            return client.frames.pop(index)
    async with asyncio.timeout(within):
        while True:
            frame = json.loads(await client.socket.recv())
            if match(frame):
                return frame
            client.frames.append(frame)


def presence_event(event: str, client: Client) -> Callable[[dict[str, Any]], bool]:
    return lambda f: (
        f.get("type") == "presence" and f.get("event") == event and f["user"]["id"] == client.session.user_id
    )


async def control(stack: dict[str, Any], path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{stack['frontDoorUrl']}/_local/{path}", json=body) as response,
    ):
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer


def test_presence_is_both_regions_once_per_user_and_typing_crosses_to_the_others(
    stack: dict[str, Any],
) -> None:
    async def scenario() -> None:
        us, eu = stack["regions"][NEAR_NEW_YORK], stack["regions"][NEAR_LONDON]
        room = new_room("presence")
        bo = await join(stack, eu["websocketUrl"], room, "bo")
        ada = await join(stack, us["websocketUrl"], room, "Ada")
        entered = await bo.next(presence_event("enter", ada))
        assert entered == {
            "type": "presence",
            "event": "enter",
            "user": {"id": ada.session.user_id, "name": "Ada"},
            "count": 2,
        }
        # a second tab of the same user, in the other region
        ada_tab = await Client.connect(eu["websocketUrl"], room, ada.session)
        await eventually(lambda: lists_exactly(stack, room, bo.session, ada, bo), "both listed in both")

        await ada.socket.send(json.dumps({"action": "typing", "room": room}))
        typed = {"type": "typing", "user": {"id": ada.session.user_id, "name": "Ada"}}
        assert await bo.next(lambda f: f.get("type") == "typing") == typed  # across the regions
        assert await ada_tab.next(lambda f: f.get("type") == "typing") == typed  # the typist's other tab
        # Nothing else: no ack for the typing frame, no second `enter` for the second tab, no
        # typing frame to the socket that typed. A message after them all shows what came before.
        said = await bo.send("after the typing")
        await ada.message(said["id"])
        await bo.message(said["id"])
        assert not [f for f in ada.frames if f.get("type") in ("typing", "ack", "error")]
        assert not [f for f in bo.frames if presence_event("enter", ada)(f)]

        await ada_tab.close()  # one tab of two: still there
        await ada.close()
        left = await bo.next(presence_event("leave", ada))
        assert left["count"] == 1
        await eventually(lambda: lists_exactly(stack, room, bo.session, bo), "only bo, in both")
        await bo.close()

    asyncio.run(scenario())


def test_a_user_whose_first_tabs_open_in_both_regions_at_once_is_announced_everywhere(
    stack: dict[str, Any],
) -> None:
    """Each region may read both of her memberships before it handles either INSERT: one of them
    must still say `enter` (it may say it twice: docs/api.md)."""

    async def scenario() -> None:
        us, eu = stack["regions"][NEAR_NEW_YORK], stack["regions"][NEAR_LONDON]
        room = new_room("presence-both")
        bo = await join(stack, eu["websocketUrl"], room, "bo")
        cy = await join(stack, us["websocketUrl"], room, "cy")
        ada_session = await sign_in(stack["frontDoorUrl"], "Ada")
        ada_us, ada_eu = await asyncio.gather(
            Client.connect(us["websocketUrl"], room, ada_session),
            Client.connect(eu["websocketUrl"], room, ada_session),
        )
        for listener in (bo, cy):
            assert (await listener.next(presence_event("enter", ada_us)))["user"]["name"] == "Ada"
        await eventually(lambda: lists_exactly(stack, room, bo.session, ada_us, bo, cy), "all three in both")
        for client in (ada_us, ada_eu, bo, cy):
            await client.close()

    asyncio.run(scenario())


def test_a_killed_regions_users_leave_everywhere_else_and_it_comes_back_without_ghosts(
    stack: dict[str, Any],
) -> None:
    async def scenario() -> None:
        us, eu = stack["regions"][NEAR_NEW_YORK], stack["regions"][NEAR_LONDON]
        room = new_room("presence-kill")
        ada = await join(stack, us["websocketUrl"], room, "ada")
        bo = await join(stack, eu["websocketUrl"], room, "bo")
        await eventually(lambda: lists_exactly(stack, room, ada.session, ada, bo), "both listed")
        assert not (await control(stack, f"regions/{NEAR_LONDON}", {"action": "stop"}))["running"]
        try:
            # bo's region died under him (no $disconnect ran): he leaves ada's view
            left = await frame_within(ada, presence_event("leave", bo), REGION_GONE)
            assert left["count"] == 1
            assert await presence(us["httpUrl"], room, ada.session) == {
                "count": 1,
                "members": listing(ada),
                "region": NEAR_NEW_YORK,
            }
        finally:
            assert (await control(stack, f"regions/{NEAR_LONDON}", {"action": "start"}))["running"]
            await until_health(stack["statusUrl"], NEAR_LONDON, healthy=True)
        # back: its old connection is found gone, not listed anywhere
        await eventually(
            lambda: lists_exactly(stack, room, ada.session, ada), "no ghost of bo", within=REGION_GONE
        )
        again = await Client.connect(eu["websocketUrl"], room, bo.session)
        await ada.next(presence_event("enter", bo))
        await eventually(lambda: lists_exactly(stack, room, ada.session, ada, bo), "bo back")
        await again.close()
        await ada.close()

    asyncio.run(scenario())


def test_while_replication_is_paused_each_region_shows_its_own_and_they_agree_once_it_resumes(
    stack: dict[str, Any],
) -> None:
    async def scenario() -> None:
        us, eu = stack["regions"][NEAR_NEW_YORK], stack["regions"][NEAR_LONDON]
        room = new_room("presence-paused")
        ada = await join(stack, us["websocketUrl"], room, "ada")
        await eventually(lambda: lists_exactly(stack, room, ada.session, ada), "ada listed")
        await control(stack, "replication/messages", {"paused": True})
        try:
            bo = await join(stack, eu["websocketUrl"], room, "bo")
            seen_in_eu = await presence(eu["httpUrl"], room, bo.session)
            assert seen_in_eu["members"] == listing(ada, bo)
            assert (await presence(us["httpUrl"], room, ada.session))["members"] == listing(ada)
        finally:
            await control(stack, "replication/messages", {"paused": False})
        await ada.next(presence_event("enter", bo))
        await eventually(lambda: lists_exactly(stack, room, ada.session, ada, bo), "both, once resumed")
        await bo.close()
        await ada.close()

    asyncio.run(scenario())

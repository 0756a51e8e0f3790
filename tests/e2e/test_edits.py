"""Edits and deletes against the local two-region stack, with replication paused between the
regions so that each region accepts a change the other has not seen (last writer wins then
keeps the later one): a delete stays final, its text gone from both regions' tables, and two
edits end as one state in both regions and on every client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from chat import ulid
from localcloud.aws import provision
from stack_definition.template import MESSAGES, load, table_names
from tests.e2e.chat import NEAR_LONDON, NEAR_NEW_YORK, TIMEOUT, Client, Session, history, join, sign_in

pytestmark = pytest.mark.e2e
ROOM = "e2e-edits"


async def call(
    method: str, url: str, session: Session, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, url, json=body, headers=session.headers) as response,
    ):
        return response.status, await response.json()


async def replication(stack: dict[str, Any], *, paused: bool) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{stack['frontDoorUrl']}/_local/replication/messages", json={"paused": paused}
        ) as response,
    ):
        assert response.status == 200, await response.text()


def stored(stack: dict[str, Any], region: str, key: dict[str, Any]) -> dict[str, Any] | None:
    """An item of the region's messages table, read at the AWS endpoint (moto), as it is stored."""
    dynamodb = provision.client("dynamodb", stack["awsEndpointUrl"], region)
    table = table_names(load())[MESSAGES]
    item: dict[str, Any] | None = dynamodb.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    return item


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Nothing announces that two tables agree (an overwrite by replication is not an event the
    API offers): read until they do."""
    async with asyncio.timeout(TIMEOUT):
        while not await check():
            await asyncio.sleep(0.1)


async def shown_after(
    viewer: Client, message_id: str, match: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """What the viewer shows of the message once a state that `match`es has reached it and the
    pushes have gone quiet: of every state pushed to it, the greatest (deleted first, then
    version, editedAt, text), as docs/api.md tells clients to keep."""
    frames = [
        await viewer.next(
            lambda f: f.get("type") == "message" and f["message"]["id"] == message_id and match(f["message"])
        )
    ]
    frames += await viewer.drain()
    states = [f["message"] for f in frames if f.get("type") == "message" and f["message"]["id"] == message_id]
    return max(states, key=lambda m: (m["deleted"], m["version"], m["editedAt"] or "", m["text"] or ""))


async def post_everywhere(stack: dict[str, Any], author: Session, viewers: list[Client]) -> str:
    us = stack["regions"][NEAR_NEW_YORK]
    message_id = ulid.new()
    status, _ = await call(
        "POST", f"{us['httpUrl']}/rooms/{ROOM}/messages", author, {"id": message_id, "text": "a secret"}
    )
    assert status == 201
    for viewer in viewers:  # replication carried it to the other region
        await viewer.message(message_id)
    return message_id


def test_an_edit_in_one_region_and_a_delete_in_the_other_while_replication_is_paused_end_deleted_in_both(
    stack: dict[str, Any],
) -> None:
    us, eu = stack["regions"][NEAR_NEW_YORK], stack["regions"][NEAR_LONDON]

    async def scenario() -> None:
        ada = await sign_in(stack["frontDoorUrl"], "ada")
        viewers = [await join(stack, region["websocketUrl"], ROOM, "viewer") for region in (us, eu)]
        message_id = await post_everywhere(stack, ada, viewers)
        one = f"/rooms/{ROOM}/messages/{message_id}"
        # Given replication paused, a delete accepted in us-east-1, then an edit in eu-west-2
        # (the later write: last writer wins would keep its text in both tables)
        await replication(stack, paused=True)
        try:
            status, gone = await call("DELETE", f"{us['httpUrl']}{one}", ada)
            assert (status, gone["deleted"], gone["text"]) == (200, True, None)
            status, edited = await call("PATCH", f"{eu['httpUrl']}{one}", ada, {"text": "a secret, revealed"})
            assert (status, edited["deleted"], edited["text"]) == (200, False, "a secret, revealed")
        finally:
            # When replication resumes
            await replication(stack, paused=False)
        # Then both regions' tables hold the message deleted, with no text, and its tombstone
        key = {"pk": {"S": f"room#{ROOM}"}, "sk": {"S": f"{message_id}#{ada.user_id}"}}
        tombstone = {"pk": {"S": f"deleted#{ROOM}#{message_id}#{ada.user_id}"}, "sk": {"S": "deleted"}}

        async def deleted_everywhere() -> bool:
            items = [stored(stack, region, key) for region in (NEAR_NEW_YORK, NEAR_LONDON)]
            return all(item is not None and "text" not in item and item["deleted"]["BOOL"] for item in items)

        await until(deleted_everywhere)
        assert all(stored(stack, region, tombstone) for region in (NEAR_NEW_YORK, NEAR_LONDON))
        # and both regions' history, and both regions' viewers, show it deleted
        for region in (us, eu):
            (message,) = [
                m for m in (await history(region["httpUrl"], ROOM, ada))["messages"] if m["id"] == message_id
            ]
            assert (message["deleted"], message["text"]) == (True, None)
        for viewer in viewers:
            state = await shown_after(viewer, message_id, lambda m: m["deleted"])
            assert (state["deleted"], state["text"]) == (True, None)
            await viewer.close()

    asyncio.run(scenario())


def test_two_edits_in_two_regions_while_replication_is_paused_end_as_one_state_everywhere(
    stack: dict[str, Any],
) -> None:
    us, eu = stack["regions"][NEAR_NEW_YORK], stack["regions"][NEAR_LONDON]

    async def scenario() -> None:
        ada = await sign_in(stack["frontDoorUrl"], "ada")
        viewers = [await join(stack, region["websocketUrl"], ROOM, "viewer") for region in (us, eu)]
        message_id = await post_everywhere(stack, ada, viewers)
        one = f"/rooms/{ROOM}/messages/{message_id}"
        # Given an edit accepted in each region, neither seen by the other
        await replication(stack, paused=True)
        try:
            for region, text in ((us, "edited in virginia"), (eu, "edited in london")):
                status, edited = await call("PATCH", f"{region['httpUrl']}{one}", ada, {"text": text})
                assert (status, edited["version"]) == (200, 2)
        finally:
            await replication(stack, paused=False)

        # Then both regions settle on one state, above both edits' version, and so does every viewer
        async def one_state() -> bool:
            pages = [(await history(region["httpUrl"], ROOM, ada))["messages"] for region in (us, eu)]
            states = [
                [(m["version"], m["text"], m["editedAt"]) for m in page if m["id"] == message_id]
                for page in pages
            ]
            return states[0] == states[1] and states[0][0][0] > 2

        await until(one_state)
        (final,) = [m for m in (await history(us["httpUrl"], ROOM, ada))["messages"] if m["id"] == message_id]
        assert final["text"] == "edited in london"  # the later write, which last writer wins kept
        for viewer in viewers:
            state = await shown_after(viewer, message_id, lambda m: m["version"] == final["version"])
            assert {k: state[k] for k in ("version", "text", "editedAt")} == {
                k: final[k] for k in ("version", "text", "editedAt")
            }
            await viewer.close()

    asyncio.run(scenario())


def test_an_edit_and_a_delete_sent_on_the_websocket_reach_a_viewer_in_the_other_region(
    stack: dict[str, Any],
) -> None:
    us, eu = stack["regions"][NEAR_NEW_YORK], stack["regions"][NEAR_LONDON]

    async def scenario() -> None:
        ada = await join(stack, us["websocketUrl"], ROOM, "ada")
        viewer = await join(stack, eu["websocketUrl"], ROOM, "viewer")
        message_id = (await ada.send("typo hree"))["id"]
        await viewer.message(message_id)
        for frame in (
            {"action": "editMessage", "room": ROOM, "id": message_id, "text": "typo here"},
            {"action": "deleteMessage", "room": ROOM, "id": message_id},
        ):
            await ada.socket.send(json.dumps(frame))
            ack = await ada.next(lambda f: f.get("type") in ("ack", "error") and f.get("id") == message_id)
            assert ack == {"type": "ack", "id": message_id, "acceptedRegion": NEAR_NEW_YORK}
        edit = await viewer.message(message_id)
        gone = await viewer.message(message_id)
        assert (edit["message"]["text"], edit["message"]["version"], edit["deliveredBy"]) == (
            "typo here",
            2,
            NEAR_LONDON,
        )
        assert (gone["message"]["text"], gone["message"]["deleted"], gone["message"]["version"]) == (
            None,
            True,
            3,
        )
        await ada.close()
        await viewer.close()

    asyncio.run(scenario())

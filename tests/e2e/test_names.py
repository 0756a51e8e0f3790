"""Names against the local two-region stack (docs/api.md, "Names"): two guests called "Ada" carry
different tags on every frame, and a look-alike of someone who just spoke cannot speak."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from chat import ulid
from chat.model import user_tag
from tests.e2e.chat import NEAR_LONDON, NEAR_NEW_YORK, history, join, sign_in


def test_two_adas_are_told_apart_on_every_frame_and_a_look_alike_cannot_speak(stack: dict[str, Any]) -> None:
    us, eu = stack["regions"][NEAR_NEW_YORK], stack["regions"][NEAR_LONDON]
    room = f"e2e-names-{ulid.new().lower()}"

    async def scenario() -> None:
        # given Ada, who speaks in a room, and a listener in the other region
        ada = await join(stack, us["websocketUrl"], room, "Ada")
        listener = await join(stack, eu["websocketUrl"], room, "Lis")
        ack = await ada.send("it is me")
        assert ack["type"] == "ack"
        frame = await listener.message(ack["id"])
        assert frame["deliveredBy"] == NEAR_LONDON
        pushed = frame["message"]
        assert (pushed["author"], pushed["authorTag"], pushed["authorKind"]) == (
            "Ada",
            user_tag(ada.session.user_id),
            "guest",
        )

        # when another guest joins as "Ada" with a Cyrillic A and speaks over the WebSocket
        fake = await join(stack, us["websocketUrl"], room, "\u0410da")
        refused = await fake.send("it is me too")
        # then the message is refused with name_taken, naming the tag of the Ada it looks like
        assert (refused["type"], refused["code"]) == ("error", "name_taken")
        assert user_tag(ada.session.user_id) in refused["message"]

        # and over HTTP in the other region, which has stored Ada's message (it pushed it to the
        # listener connected there)
        impostor = await sign_in(stack["frontDoorUrl"], "Ada")
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{eu['httpUrl']}/rooms/{room}/messages",
                json={"id": ulid.new(), "text": "me again"},
                headers=impostor.headers,
            ) as response,
        ):
            assert (response.status, (await response.json())["error"]["code"]) == (409, "name_taken")

        stored = (await history(us["httpUrl"], room, ada.session))["messages"]
        assert {(m["author"], m["authorId"]) for m in stored} == {("Ada", ada.session.user_id)}
        for client in (ada, listener, fake):
            await client.close()

    asyncio.run(scenario())

"""Names against the local two-region stack (docs/api.md, "Names"): two guests who both look like
"Ada" speak, and every frame and history page tells them apart by tag and marks them as guests."""

from __future__ import annotations

import asyncio
from typing import Any

from chat import ulid
from chat.model import user_tag
from tests.e2e.chat import NEAR_LONDON, NEAR_NEW_YORK, history, join


def test_two_adas_in_two_regions_are_told_apart_on_every_frame_and_in_history(stack: dict[str, Any]) -> None:
    us, eu = stack["regions"][NEAR_NEW_YORK], stack["regions"][NEAR_LONDON]
    room = f"e2e-names-{ulid.new().lower()}"

    async def scenario() -> None:
        # given a guest "Ada" near us-east-1, a guest "Аda" (Cyrillic А) near London, and a
        # listener in each region
        ada = await join(stack, us["websocketUrl"], room, "Ada")
        other = await join(stack, eu["websocketUrl"], room, "\u0410da")
        listeners = [await join(stack, region["websocketUrl"], room, "Lis") for region in (us, eu)]

        # when each Ada speaks
        acks = [await ada.send("it is me"), await other.send("no, it is me")]
        assert [ack["type"] for ack in acks] == ["ack", "ack"]

        # then every listener, in either region, gets each message with its author's own tag
        expected = {
            (ada.session.user_id, user_tag(ada.session.user_id), "guest"),
            (other.session.user_id, user_tag(other.session.user_id), "guest"),
        }
        assert len({tag for _, tag, _ in expected}) == 2
        for listener in listeners:
            frames = [(await listener.message(ack["id"]))["message"] for ack in acks]
            assert {(m["authorId"], m["authorTag"], m["authorKind"]) for m in frames} == expected

        # and so does the history of both regions (each pushed both messages, so holds both)
        for region in (us, eu):
            stored = (await history(region["httpUrl"], room, ada.session))["messages"]
            assert {(m["authorId"], m["authorTag"], m["authorKind"]) for m in stored} == expected
        for client in (ada, other, *listeners):
            await client.close()

    asyncio.run(scenario())

"""Sessions that end, on the running local stack through the public contract: after
`DELETE /session` the token, and a token renewed from it before the sign-out, are refused by the
rooms routes, by renewal and by the WebSocket handshake in both regions, and the user's open
WebSockets are closed in both regions."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest

from tests.e2e.chat import NEAR_LONDON, NEAR_NEW_YORK, TIMEOUT, Client, Session, history, sign_in
from tests.e2e.test_identity import handshake_status, renew

pytestmark = pytest.mark.e2e


async def sign_out(http_url: str, session: Session) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.delete(f"{http_url}/session", headers=session.headers) as answer,
    ):
        return answer.status


async def refusals(stack: dict[str, Any], session: Session, room: str) -> dict[str, int]:
    """What each region answers this session now: a rooms read, a renewal, a handshake."""
    answers = {}
    async with aiohttp.ClientSession() as http:
        for region, urls in stack["regions"].items():
            async with http.get(f"{urls['httpUrl']}/rooms/{room}/messages", headers=session.headers) as read:
                answers[f"{region} GET messages"] = read.status
            async with http.post(f"{urls['httpUrl']}/session", json={}, headers=session.headers) as renewal:
                answers[f"{region} POST /session"] = renewal.status
            status, _ = await handshake_status(urls["websocketUrl"], {"room": room, "token": session.token})
            answers[f"{region} $connect"] = status
    return answers


def test_given_a_sign_out_then_its_tokens_are_refused_by_both_apis_in_every_region(
    stack: dict[str, Any], record_property: Any
) -> None:
    us, eu = stack["regions"][NEAR_NEW_YORK], stack["regions"][NEAR_LONDON]
    room = "e2e-sign-out"

    async def scenario() -> float:
        # given a session, and a token renewed from it, both good in both regions
        first = await sign_in(us["httpUrl"], "leaver")
        renewed = await renew(eu["httpUrl"], first)
        bystander = await sign_in(us["httpUrl"], "stayer")
        for region in (us, eu):
            for session in (first, renewed):
                await history(region["httpUrl"], room, session)
                await (await Client.connect(region["websocketUrl"], room, session)).close()
        # and the user's WebSockets open in both regions, and a bystander's
        open_sockets = [await Client.connect(r["websocketUrl"], room, first) for r in (us, eu)]
        stayer = await Client.connect(eu["websocketUrl"], room, bystander)
        # when the renewed token signs out in one region
        assert await sign_out(us["httpUrl"], renewed) == 204
        signed_out_at = time.monotonic()
        # then the region that took it refuses both tokens at once (a strongly consistent read)
        for session in (first, renewed):
            here = await refusals({"regions": {NEAR_NEW_YORK: us}}, session, room)
            assert set(here.values()) == {401}, here
        # and within a few seconds so does every region, for both tokens, on both APIs
        async with asyncio.timeout(TIMEOUT):
            while True:
                answers = {}
                for name, session in (("first", first), ("renewed", renewed)):
                    answers |= {f"{name}: {k}": v for k, v in (await refusals(stack, session, room)).items()}
                if set(answers.values()) == {401}:
                    break
                await asyncio.sleep(0.05)
        took = time.monotonic() - signed_out_at
        # and each region closes its own open sockets of that user
        async with asyncio.timeout(TIMEOUT):
            for client in open_sockets:
                await client.socket.wait_closed()
        closed = time.monotonic() - signed_out_at
        assert (await stayer.send("still here"))["type"] == "ack"
        await stayer.close()
        # and a second sign-out is refused like any use of the session
        assert await sign_out(eu["httpUrl"], first) == 401
        # and another session of the stack is untouched
        await history(eu["httpUrl"], room, bystander)
        await (await Client.connect(eu["websocketUrl"], room, bystander)).close()
        return took, closed

    took, closed = asyncio.run(scenario())
    record_property("refused_everywhere_after_seconds", round(took, 3))
    record_property("sockets_closed_everywhere_after_seconds", round(closed, 3))
    print(
        f"after DELETE /session: refused in every region within {took:.3f} s,"
        f" open sockets closed within {closed:.3f} s"
    )

"""Identity and trust on the running local stack (issue 19), through the public contract only:
no way in without a session, the author is the session's, no acknowledged message is replaced
from the other region, one identity cannot starve another, and sessions outlive a region."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import aiohttp
import boto3
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from chat import sessions, ulid
from stack_definition.template import load
from tests.e2e.chat import NEAR_LONDON, NEAR_NEW_YORK, Client, Session, history, join, sign_in, until_health

pytestmark = pytest.mark.e2e

HANDSHAKE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


def signing_keys(stack: dict[str, Any]) -> sessions.SigningKeys:
    """The session key as the functions read it: the template's secret, in the AWS endpoint."""
    template = load()
    secret = template.raw["Resources"]["SessionSigningKey"]["Properties"]["Name"]
    client = boto3.client(
        "secretsmanager",
        endpoint_url=stack["awsEndpointUrl"],
        region_name=NEAR_NEW_YORK,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    name = template.context(NEAR_NEW_YORK).resolve(secret)
    return sessions.SigningKeys.from_secret(client.get_secret_value(SecretId=name)["SecretString"])


def expired_token(stack: dict[str, Any]) -> str:
    """A session signed with the stack's own key that ended an hour ago."""
    now = int(time.time())
    session = sessions.Session(
        "g_" + "A" * 26,
        "ada",
        expires_at=now - 3600,
        session_id=sessions.new_session_id(),
        started_at=now - 7200,
    )
    return sessions.sign(session, signing_keys(stack), now=now - 7200)


def tampered(token: str) -> str:
    """The same token with its claims changed to name another user; the signature left as it was."""
    header, claims, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    decoded["sub"] = "g_" + "M" * 26
    forged = base64.urlsafe_b64encode(json.dumps(decoded).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


async def handshake_status(url: str, query: dict[str, str]) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url.replace("ws", "http", 1), params=query, headers=HANDSHAKE) as response,
    ):
        return response.status, await response.text()


def websocket_urls(stack: dict[str, Any]) -> list[str]:
    return [stack["frontDoorWebsocketUrl"], *(r["websocketUrl"] for r in stack["regions"].values())]


def test_no_websocket_handshake_gets_in_without_a_valid_session(stack: dict[str, Any]) -> None:
    async def scenario() -> None:
        ada = await sign_in(stack["frontDoorUrl"], "ada")
        tokens = {
            "missing": None,
            "empty": "",
            "junk": "not-a-session",
            "tampered": tampered(ada.token),
            "expired": expired_token(stack),
        }
        for url in websocket_urls(stack):
            for kind, token in tokens.items():
                query = {"room": "e2e-no-way-in"} | ({} if token is None else {"token": token})
                status, _ = await handshake_status(url, query)
                assert status == 401, (url, kind)
            # and the same handshake with the real session gets in
            client = await Client.connect(url, "e2e-no-way-in", ada)
            await client.close()

    asyncio.run(scenario())


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("authorization", [None, "Bearer junk", "Basic YWRhOmFkYQ==", "TAMPERED", "EXPIRED"])
def test_no_rooms_request_gets_in_without_a_valid_session(
    stack: dict[str, Any], method: str, authorization: str | None
) -> None:
    async def scenario() -> None:
        header = authorization
        if authorization == "TAMPERED":
            header = f"Bearer {tampered((await sign_in(stack['frontDoorUrl'], 'ada')).token)}"
        elif authorization == "EXPIRED":
            header = f"Bearer {expired_token(stack)}"
        room = f"e2e-http-401-{method.lower()}"
        body = {"id": ulid.new(), "text": "let me in"}
        async with aiohttp.ClientSession() as http:
            for base in (stack["frontDoorUrl"], *(r["httpUrl"] for r in stack["regions"].values())):
                async with http.request(
                    method,
                    f"{base}/rooms/{room}/messages",
                    json=body if method == "POST" else None,
                    headers={"Authorization": header} if header else {},
                ) as response:
                    assert response.status == 401, base
                    assert response.headers["WWW-Authenticate"].startswith("Bearer")
                    error = (await response.json())["error"]
                    assert error["code"] == "unauthorized"
                    assert error["message"]
        reader = await sign_in(stack["frontDoorUrl"], "reader")
        for region in stack["regions"].values():
            assert (await history(region["httpUrl"], room, reader))["messages"] == []  # nothing written

    asyncio.run(scenario())


def test_the_author_is_the_sessions_never_the_bodys(stack: dict[str, Any]) -> None:
    us = stack["regions"][NEAR_NEW_YORK]

    async def scenario() -> None:
        ada = await join(stack, us["websocketUrl"], "e2e-author", "ada")
        frame_id, posted_id = ulid.new(), ulid.new()
        await ada.socket.send(
            json.dumps(
                {"action": "sendMessage", "room": "e2e-author", "id": frame_id, "author": "bo", "text": "hi"}
            )
        )
        assert (await ada.next(lambda f: f.get("id") == frame_id))["type"] == "ack"
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{us['httpUrl']}/rooms/e2e-author/messages",
                json={"id": posted_id, "author": "bo", "authorId": "g_" + "B" * 26, "text": "hi"},
                headers=ada.session.headers,
            ) as response,
        ):
            assert response.status == 201
        stored = (await history(us["httpUrl"], "e2e-author", ada.session))["messages"]
        assert {(m["id"], m["author"], m["authorId"]) for m in stored} == {
            (frame_id, "ada", ada.session.user_id),
            (posted_id, "ada", ada.session.user_id),
        }
        await ada.close()

    asyncio.run(scenario())


async def replication(stack: dict[str, Any], **settings: Any) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{stack['frontDoorUrl']}/_local/replication/messages", json=settings) as response,
    ):
        assert response.status == 200, await response.text()


def test_two_identities_writing_one_id_in_two_regions_inside_the_replication_window_both_survive(
    stack: dict[str, Any],
) -> None:
    us, eu = stack["regions"][NEAR_NEW_YORK], stack["regions"][NEAR_LONDON]
    room = "e2e-same-id-race"

    async def scenario() -> None:
        # given ada in us-east-1 and mallory in eu-west-2, and a viewer in each region
        ada = await join(stack, us["websocketUrl"], room, "ada")
        mallory = await join(stack, eu["websocketUrl"], room, "mallory")
        viewers = {
            NEAR_NEW_YORK: await join(stack, us["websocketUrl"], room, "viewer"),
            NEAR_LONDON: await join(stack, eu["websocketUrl"], room, "viewer"),
        }
        # when both write the same id while replication is held back (a wide window)
        message_id = ulid.new()
        await replication(stack, paused=True)
        try:
            assert (await ada.send("ada's words", message_id))["type"] == "ack"
            assert (await mallory.send("mallory's words", message_id))["type"] == "ack"
        finally:
            await replication(stack, paused=False)
        # then every viewer, in both regions, is shown both messages, each by its own author
        expected = {
            (ada.session.user_id, "ada", "ada's words"),
            (mallory.session.user_id, "mallory", "mallory's words"),
        }
        for viewer in viewers.values():
            shown = {
                (f["message"]["authorId"], f["message"]["author"], f["message"]["text"])
                for f in [await viewer.message(message_id, author) for author, _, _ in expected]
            }
            assert shown == expected
        # and both regions' history keeps both, neither replaced
        for region in (us, eu):
            stored = (await history(region["httpUrl"], room, ada.session))["messages"]
            assert {
                (m["authorId"], m["author"], m["text"]) for m in stored if m["id"] == message_id
            } == expected
        for client in (ada, mallory, *viewers.values()):
            await client.close()

    asyncio.run(scenario())


def test_a_flood_from_one_identity_is_rate_limited_and_not_stored_while_another_still_chats(
    stack: dict[str, Any],
) -> None:
    us = stack["regions"][NEAR_NEW_YORK]
    room = "e2e-flood-identity"

    async def scenario() -> None:
        flooder = await join(stack, us["websocketUrl"], room, "flooder")
        bystander = await join(stack, us["websocketUrl"], room, "bystander")
        flood = [ulid.new() for _ in range(40)]  # four times the burst, at once
        for message_id in flood:
            await flooder.socket.send(
                json.dumps({"action": "sendMessage", "room": room, "id": message_id, "text": "spam"})
            )
        answers = [await flooder.next(lambda f, i=i: f.get("id") == i) for i in flood]
        refused = [a for a in answers if a["type"] == "error"]
        acked = {a["id"] for a in answers if a["type"] == "ack"}
        assert refused  # the burst is spent...
        assert acked  # ...after some got in
        assert all(a["code"] == "rate_limited" and a["retryAfterMs"] > 0 for a in refused)
        # meanwhile, another identity's messages go through
        assert [(await bystander.send(f"still here {n}"))["type"] for n in range(3)] == ["ack"] * 3
        # and only what was acknowledged is stored
        stored = (await history(us["httpUrl"], room, bystander.session))["messages"]
        assert {m["id"] for m in stored if m["authorId"] == flooder.session.user_id} == acked
        # over HTTP too: 429 with the contract's body and Retry-After, nothing stored
        # (at once: one at a time, a busy local stack can take longer per post than the rate's spacing)
        async with aiohttp.ClientSession() as http:
            statuses = []

            async def post(message_id: str) -> None:
                async with http.post(
                    f"{us['httpUrl']}/rooms/{room}/messages",
                    json={"id": message_id, "text": "spam"},
                    headers=flooder.session.headers,
                ) as response:
                    statuses.append(response.status)
                    if response.status == 429:
                        assert (await response.json())["error"]["code"] == "rate_limited"
                        assert int(response.headers["Retry-After"]) >= 1
                        acked.discard(message_id)
                    else:
                        acked.add(message_id)

            await asyncio.gather(*(post(ulid.new()) for _ in range(15)))
        assert 429 in statuses
        stored = (await history(us["httpUrl"], room, bystander.session))["messages"]
        assert {m["id"] for m in stored if m["authorId"] == flooder.session.user_id} == acked
        for client in (flooder, bystander):
            await client.close()

    asyncio.run(scenario())


def test_one_connection_over_the_per_user_cap_is_refused_with_429(stack: dict[str, Any]) -> None:
    url = stack["regions"][NEAR_LONDON]["websocketUrl"]
    cap = int(load().context(NEAR_LONDON).parameter("MaxConnectionsPerUser"))

    async def scenario() -> None:
        ada = await sign_in(stack["frontDoorUrl"], "ada")
        open_ = [await Client.connect(url, "e2e-cap", ada) for _ in range(cap)]
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(f"{url}?room=e2e-cap&token={ada.token}")
        assert refused.value.response.status_code == 429
        assert json.loads(bytes(refused.value.response.body))["error"]["code"] == "rate_limited"
        # another user is not affected
        other = await join(stack, url, "e2e-cap", "bo")
        for client in (*open_, other):
            await client.close()

    asyncio.run(scenario())


def test_a_session_made_in_one_region_works_in_the_other(stack: dict[str, Any]) -> None:
    us, eu = stack["regions"][NEAR_NEW_YORK], stack["regions"][NEAR_LONDON]

    async def scenario() -> None:
        for made, used in ((us, eu), (eu, us)):
            session = await sign_in(made["httpUrl"], "traveller")
            client = await Client.connect(used["websocketUrl"], "e2e-travel", session)
            ack = await client.send("signed in elsewhere")
            assert ack["type"] == "ack"
            stored = (await history(used["httpUrl"], "e2e-travel", session))["messages"]
            assert (ack["id"], session.user_id) in {(m["id"], m["authorId"]) for m in stored}
            await client.close()

    asyncio.run(scenario())


async def control_region(stack: dict[str, Any], region: str, action: str) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{stack['frontDoorUrl']}/_local/regions/{region}", json={"action": action}) as response,
    ):
        assert response.status == 200


async def renew(http_url: str, session: Session) -> Session:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{http_url}/session", json={}, headers=session.headers) as response,
    ):
        assert response.status == 201, await response.text()
        body = await response.json()
        return Session(body["token"], body["user"]["id"], body["user"]["name"])


def test_sign_in_and_chat_go_on_with_one_region_killed(stack: dict[str, Any]) -> None:
    async def scenario() -> None:
        # given a londoner signed in while both regions were up (in eu-west-2)
        earlier = await sign_in(stack["frontDoorUrl"], "earlier", location="london")
        await control_region(stack, NEAR_LONDON, "stop")
        try:
            await until_health(stack["statusUrl"], NEAR_LONDON, healthy=False)
            # when a new londoner signs in through the routed name: the survivor answers
            fresh = await sign_in(stack["frontDoorUrl"], "fresh", location="london")
            a = await Client.connect(stack["frontDoorWebsocketUrl"], "e2e-killed", fresh, location="london")
            b = await Client.connect(stack["frontDoorWebsocketUrl"], "e2e-killed", earlier, location="london")
            assert (a.region, b.region) == (NEAR_NEW_YORK, NEAR_NEW_YORK)
            # then both chat, and the earlier session renews, for the same user
            ack = await a.send("signed in during the outage")
            assert (await b.message(ack["id"]))["message"]["authorId"] == fresh.user_id
            renewed = await renew(stack["frontDoorUrl"], earlier)
            assert renewed.user_id == earlier.user_id
            for client in (a, b):
                await client.close()
        finally:
            await control_region(stack, NEAR_LONDON, "start")
            await until_health(stack["statusUrl"], NEAR_LONDON, healthy=True)

    asyncio.run(scenario())

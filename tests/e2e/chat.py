"""A small test client of the public contract (BRIEF section 3): sessions, WebSocket and HTTP."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp
import websockets

from chat import ulid
from stack_definition.routing import nearest

# The regions next to these simulated client locations (the local stack's round-trip data).
NEAR_NEW_YORK, NEAR_LONDON = nearest("new-york"), nearest("london")

TIMEOUT = 15.0  # generous: a CI machine can be slow; no assertion is about time


@dataclass(frozen=True)
class Session:
    """`POST /session`'s answer: a token and the user it names."""

    token: str
    user_id: str
    name: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def sign_in(http_url: str, name: str, **params: str) -> Session:
    """A guest session from `http_url` (the front door, or a region's own HTTP API)."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{http_url}/session", json={"name": name}, params=params) as response,
    ):
        assert response.status == 201, await response.text()
        body = await response.json()
        return Session(body["token"], body["user"]["id"], body["user"]["name"])


async def join(stack: dict[str, Any], url: str, room: str, name: str, **query: str) -> Client:
    """A new guest, signed in through the front door, connected to `url` (any region's or the
    front door's WebSocket URL: sessions work in every region)."""
    return await Client.connect(url, room, await sign_in(stack["frontDoorUrl"], name), **query)


class Client:
    def __init__(self, socket: Any, room: str, session: Session, region: str | None) -> None:
        self.socket = socket
        self.room = room
        self.session = session
        self.author = session.name
        self.region = region  # where the front door (or the URL) put this connection
        self.frames: list[dict[str, Any]] = []

    @classmethod
    async def connect(cls, url: str, room: str, session: Session, **query: str) -> Client:
        params = "&".join(f"{k}={v}" for k, v in {"room": room, "token": session.token, **query}.items())
        socket = await websockets.connect(f"{url}?{params}" if "?" not in url else f"{url}&{params}")
        region = socket.response.headers.get("X-Routed-Region") if socket.response else None
        return cls(socket, room, session, region)

    async def send(self, text: str, message_id: str | None = None) -> dict[str, Any]:
        """Send a message and return its ack (or error) frame."""
        message_id = message_id or ulid.new()
        await self.socket.send(
            json.dumps({"action": "sendMessage", "room": self.room, "id": message_id, "text": text})
        )
        return await self.next(lambda f: f.get("type") in ("ack", "error") and f.get("id") == message_id)

    async def next(self, match: Any) -> dict[str, Any]:
        for index, frame in enumerate(self.frames):
            if match(frame):
                return self.frames.pop(index)
        async with asyncio.timeout(TIMEOUT):
            while True:
                frame = json.loads(await self.socket.recv())
                if match(frame):
                    return frame
                self.frames.append(frame)

    async def message(self, message_id: str, author_id: str | None = None) -> dict[str, Any]:
        """The pushed message with this id (and this author's, when another may share the id)."""
        return await self.next(
            lambda f: (
                f.get("type") == "message"
                and f["message"]["id"] == message_id
                and author_id in (None, f["message"]["authorId"])
            )
        )

    async def drain(self, quiet: float = 0.3) -> list[dict[str, Any]]:
        """Every frame received until none arrives for `quiet` seconds (to prove nothing extra)."""
        while True:
            try:
                self.frames.append(json.loads(await asyncio.wait_for(self.socket.recv(), quiet)))
            except TimeoutError:
                frames, self.frames = self.frames, []
                return frames

    async def close(self) -> None:
        await self.socket.close()


async def history(
    http_url: str, room: str, reader: Session, after: str | None = None, **params: str
) -> dict[str, Any]:
    query = {**({"after": after} if after else {}), **params}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{http_url}/rooms/{room}/messages", params=query, headers=reader.headers) as response,
    ):
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body


async def events_after(status_url: str, after: int, wait: float = TIMEOUT) -> dict[str, Any]:
    base = status_url.rsplit("/", 1)[0]
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base}/events", params={"after": str(after), "wait": str(wait)}) as response,
    ):
        body: dict[str, Any] = await response.json()
        return body


async def until_health(status_url: str, region: str, healthy: bool) -> list[dict[str, Any]]:
    """Await the front door's events until `region` has the given health; return the events seen."""
    seen: list[dict[str, Any]] = []
    after = 0
    async with asyncio.timeout(TIMEOUT * 2):
        while True:
            page = await events_after(status_url, after)
            seen += page["events"]
            after = page["last"]
            if page["regions"][region] == healthy:
                return seen


async def until_regions_count_each_other(stack: dict[str, Any], within: float = 150.0) -> None:
    """Await every region counting every other's presence: a probe connected in each region is
    listed by `GET /rooms/{room}/presence` in every other. A region counts another's users only
    while that one's keeper beats (docs/architecture.md, "Presence and typing"), and a region that
    just came back from a fault or a restart beats again within a minute: tests of presence across
    regions start from regions that count each other, whatever the tests before them did."""
    room = f"probe-{ulid.new().lower()[-10:]}"
    probes = {
        region: await Client.connect(urls["websocketUrl"], room, await sign_in(urls["httpUrl"], "probe"))
        for region, urls in stack["regions"].items()
    }
    try:
        async with asyncio.timeout(within), aiohttp.ClientSession() as http:
            for region, urls in stack["regions"].items():
                others = {p.session.user_id for r, p in probes.items() if r != region}
                reader = probes[region].session
                while True:
                    url = f"{urls['httpUrl']}/rooms/{room}/presence"
                    async with http.get(url, headers=reader.headers) as response:
                        listed = {m["id"] for m in (await response.json()).get("members", [])}
                    if others <= listed:
                        break
                    await asyncio.sleep(0.5)
    finally:
        for probe in probes.values():
            await probe.close()

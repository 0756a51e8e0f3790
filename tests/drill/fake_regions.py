"""Two chat regions on loopback, small enough to reason about, for driving the drill without the
local stack: each serves `/health`, guest sign-in (`POST /session`: the token is the name, no more),
the rooms' history and a WebSocket (`?room&token`) that answers a ping with a pong, acks every
message (and edit or delete of one's own) and pushes it to every connection in both regions
(instant replication). A region can be made to
stall: it still accepts connections and requests, and never answers them. Or to fail gray, as a
region whose DynamoDB fails: its sockets stay open, sends and pings are answered with
`unavailable` error frames, nothing is pushed to its connections, its history answers 503.

Each region also serves the room's presence (`GET /rooms/{room}/presence` with a bearer token):
every user with a socket open to the room in either region, once, sorted by name, as the contract
says; `presence_faults` makes a region get it wrong (a ghost, a member left out, one listed twice,
a wrong count, or no answer), as a backend that lost track of a failed region's sockets would."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

REGIONS = ("us-east-1", "eu-west-2")
WRITES = ("sendMessage", "editMessage", "deleteMessage")


@dataclass
class PresenceFaults:
    """What one region's presence gets wrong."""

    ghosts: set[str] = field(default_factory=set)  # user ids listed though no socket is open
    hidden: set[str] = field(default_factory=set)  # user ids left out though connected
    doubled: set[str] = field(default_factory=set)  # user ids listed twice
    miscount: int = 0  # added to the count (which is otherwise right, whatever the listing says)
    fails: bool = False  # answers 503


@dataclass(frozen=True)
class Member:
    region: str
    room: str
    user_id: str
    name: str


@dataclass
class FakeRegions:
    urls: dict[str, tuple[str, str]] = field(default_factory=dict)  # region -> (ws, http)
    stalled: set[str] = field(default_factory=set)
    failing: set[str] = field(default_factory=set)
    deliver: bool = True  # False: ack but never push (as if replication and fan-out were stuck)
    messages: list[dict[str, Any]] = field(default_factory=list)
    sockets: list[tuple[str, web.WebSocketResponse]] = field(default_factory=list)  # (region, socket)
    members: dict[int, Member] = field(default_factory=dict)  # id(socket) -> who, while it is open
    presence_faults: dict[str, PresenceFaults] = field(
        default_factory=lambda: {region: PresenceFaults() for region in REGIONS}
    )

    def app(self, region: str) -> web.Application:
        async def stall_if_asked() -> None:
            if region in self.stalled:
                await asyncio.Event().wait()  # accepted, never answered

        async def health(request: web.Request) -> web.Response:
            await stall_if_asked()
            return web.json_response({"status": "ok", "region": region})

        async def history(request: web.Request) -> web.Response:
            await stall_if_asked()
            if region in self.failing:
                return web.json_response({"error": {"code": "unavailable"}}, status=503)
            room = request.match_info["room"]
            after = request.query.get("after", "")
            found = [m for m in self.messages if m["room"] == room and m["id"] > after]
            return web.json_response({"messages": found, "region": region, "next": None})

        async def presence(request: web.Request) -> web.Response:
            await stall_if_asked()
            faults = self.presence_faults[region]
            if region in self.failing or faults.fails:
                return web.json_response({"error": {"code": "unavailable"}}, status=503)
            if not request.headers.get("Authorization", "").startswith("Bearer "):
                return web.json_response({"error": {"code": "unauthorized"}}, status=401)
            room = request.match_info["room"]
            connected = {m.user_id: m.name for m in self.members.values() if m.room == room}
            # The count comes from the sockets, apart from the listing: each fault shows in one place.
            count = len(connected) + faults.miscount
            present = connected | {
                user: user for user in faults.ghosts | faults.doubled if user not in connected
            }
            listed = [(name, user) for user, name in present.items() if user not in faults.hidden]
            listed += [(present[user], user) for user in faults.doubled]
            members = [{"id": user, "name": name} for name, user in sorted(listed)]
            return web.json_response({"count": count, "members": members, "region": region})

        async def session(request: web.Request) -> web.Response:
            await stall_if_asked()
            name = (await request.json())["name"]
            return web.json_response({"token": name, "user": {"id": f"g_{name}", "name": name}}, status=201)

        async def websocket(request: web.Request) -> web.WebSocketResponse:
            author = request.query["token"]  # the session's, never the frame's
            socket = web.WebSocketResponse()
            socket.headers["X-Routed-Region"] = region  # as the front door says where it routed
            await socket.prepare(request)
            self.sockets.append((region, socket))
            self.members[id(socket)] = Member(region, request.query["room"], f"g_{author}", author)
            try:
                await serve(socket, request, author)
            finally:
                del self.members[id(socket)]
            return socket

        async def serve(socket: web.WebSocketResponse, request: web.Request, author: str) -> None:
            async for raw in socket:
                if raw.type != WSMsgType.TEXT or region in self.stalled:
                    continue
                frame = json.loads(raw.data)
                if region in self.failing:  # the heartbeat's read and the send both fail
                    failed = frame.get("id") if frame.get("action") in WRITES else None
                    await socket.send_json(
                        {"type": "error", "id": failed, "code": "unavailable", "message": "retry"}
                    )
                    continue
                if frame.get("action") == "ping":  # the heartbeat: the newest message of the room
                    room = request.query["room"]
                    latest = max((m["id"] for m in self.messages if m["room"] == room), default="")
                    await socket.send_json({"type": "pong", "latest": latest, "region": region})
                    continue
                if frame.get("action") in ("editMessage", "deleteMessage"):
                    mine = [
                        m for m in self.messages if m["id"] == frame["id"] and m["authorId"] == f"g_{author}"
                    ]
                    if not mine:
                        await socket.send_json({"type": "error", "id": frame["id"], "code": "not_found"})
                        continue
                    message = mine[0]
                    edit = frame["action"] == "editMessage"
                    message |= {"version": message["version"] + 1, "acceptedRegion": region}
                    message |= {"text": frame["text"]} if edit else {"text": None, "deleted": True}
                else:
                    message = {key: frame[key] for key in ("id", "room", "text")} | {
                        "author": author,
                        "authorId": f"g_{author}",
                        "sentAt": "",
                        "acceptedRegion": region,
                        "transport": "websocket",
                        "version": 1,
                        "editedAt": None,
                        "deleted": False,
                    }
                    if all(m["id"] != message["id"] for m in self.messages):
                        self.messages.append(message)
                await socket.send_json({"type": "ack", "id": message["id"], "acceptedRegion": region})
                if self.deliver:
                    for where, other in list(self.sockets):
                        if where in self.failing:
                            continue
                        with contextlib.suppress(ConnectionError, RuntimeError):
                            await other.send_json(
                                {"type": "message", "message": message, "deliveredBy": region}
                            )

        app = web.Application()
        app.router.add_get("/health", health)
        app.router.add_post("/session", session)
        app.router.add_get("/rooms/{room}/messages", history)
        app.router.add_get("/rooms/{room}/presence", presence)
        app.router.add_get("/", websocket)
        return app


@contextlib.contextmanager
def fake_regions() -> Iterator[FakeRegions]:
    """Both regions on free loopback ports, served by a thread of their own."""
    fake = FakeRegions()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runners: list[web.AppRunner] = []

    async def start() -> None:
        for region in REGIONS:
            runner = web.AppRunner(fake.app(region), access_log=None, shutdown_timeout=0.1)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            fake.urls[region] = (f"ws://127.0.0.1:{port}/", f"http://127.0.0.1:{port}")
            runners.append(runner)
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    ready.wait(timeout=10)
    try:
        yield fake
    finally:
        fake.stalled.clear()
        fake.failing.clear()
        for runner in runners:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)


@dataclass
class FakeTarget:
    """The drill's target over fake regions, each routed name its region's own endpoint (no
    fallback). With `gray`, taking a region out makes it fail gray; else it changes nothing.
    Without `direct`, the drill is told of no direct endpoints (and compares no histories)."""

    regions: FakeRegions
    name: str = "fake"
    gray: bool = False
    direct: bool = True

    def prepare(self) -> None: ...
    def capacity(self) -> None:
        return None

    def plan(self, region: str, mode: str) -> list[str]:
        return []

    def take_out(self, region: str, mode: str) -> None:
        if self.gray:
            self.regions.failing.add(region)

    def restore(self) -> bool:
        self.regions.failing.clear()
        return True

    def healthy(self, region: str) -> bool:
        return region not in self.regions.failing

    def serves(self, region: str) -> bool:
        return self.healthy(region)

    def routed_region(self, location: str) -> str | None:
        return location

    def websocket_url(self, location: str) -> str:
        return self.regions.urls[location][0]

    def http_url(self, location: str) -> str:
        return self.regions.urls[location][1]

    def locations(self) -> dict[str, str]:
        return {region: region for region in self.regions.urls}

    def direct_endpoints(self) -> dict[str, tuple[str, str]]:
        return dict(self.regions.urls) if self.direct else {}

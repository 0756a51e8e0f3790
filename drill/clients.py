"""Synthetic chat clients: each sends at a steady rate over the routed name, receives over its
WebSocket, and behaves as the browser client does through a failover: one id per message kept
across retries, an outbox resent after a reconnect, reconnects with backoff and jitter, history
catch-up after a gap, de-duplication by id. Each signs in as a guest (`POST /session`) like
everyone else, connects with `?room&token` and reads history with `Authorization: Bearer`.

An idle client (`heartbeat` set, rate 0) sends nothing but the page's heartbeat: `{"action":
"ping"}` after `heartbeat` seconds (±10%) of silence; no frame within `pong_timeout` means its
connection is dead, and it reconnects (away from that region) and catches up, as the page does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import websockets
from websockets.exceptions import InvalidStatus

from chat import ulid

RETRIABLE = {"unavailable", "internal_error", "rate_limited"}  # resent with the same id


@dataclass
class Outage:
    start: float
    end: float | None = None
    reason: str = ""


@dataclass
class SyntheticClient:
    name: str
    location: str
    room: str
    ws_url: str
    http_url: str
    rate: float  # messages per second (0: idle)
    direct: dict[str, tuple[str, str]] = field(default_factory=dict)  # region -> its own (ws, http) URLs
    heartbeat: float | None = None  # seconds of silence before a ping, as the page (idle clients)
    pong_timeout: float = 10.0
    sent: dict[str, float] = field(default_factory=dict)  # id -> first send time
    acked: dict[str, tuple[float, str]] = field(default_factory=dict)  # id -> (time, acceptedRegion)
    rejected: dict[str, str] = field(default_factory=dict)
    shown: list[str] = field(default_factory=list)  # what the user sees, in arrival order
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> first arrival
    live_frames: dict[str, list[str]] = field(default_factory=dict)  # id -> regions that pushed it
    outages: list[Outage] = field(default_factory=list)
    connections: list[tuple[float, str | None]] = field(default_factory=list)  # (time, routed region)
    region: str | None = None
    _socket: Any = None
    _outbox: dict[str, str] = field(default_factory=dict)
    _read_url: str = ""
    _last_send: dict[str, float] = field(default_factory=dict)
    _connected: asyncio.Event = field(default_factory=asyncio.Event)
    _token: str = ""
    _framed: asyncio.Event = field(default_factory=asyncio.Event)  # a frame arrived
    _why_closed: str = ""  # set when we close the connection ourselves

    # ------------------------------------------------------------------ receiving
    def _show(self, message: dict[str, Any], via: str, region: str) -> None:
        if message["id"] in self.seen:
            return
        self.seen[message["id"]] = {
            "at": time.time(),
            "via": via,
            "region": region,
            "acceptedRegion": message["acceptedRegion"],
        }
        self.shown.append(message["id"])

    def _on_frame(self, frame: dict[str, Any]) -> None:
        self._framed.set()
        kind = frame.get("type")  # a "pong" is the heartbeat's answer: nothing to show
        if kind == "ack" and frame["id"] in self._outbox:
            del self._outbox[frame["id"]]
            self.acked[frame["id"]] = (time.time(), frame["acceptedRegion"])
        elif kind == "error" and frame.get("id") in self._outbox and frame.get("code") not in RETRIABLE:
            self.rejected[frame["id"]] = frame.get("code", "?")
            del self._outbox[frame["id"]]
        elif kind == "message":
            message_id = frame["message"]["id"]
            self.live_frames.setdefault(message_id, []).append(frame["deliveredBy"])
            self._show(frame["message"], "live", frame["deliveredBy"])

    async def catch_up(self, session: aiohttp.ClientSession, since: float) -> int:
        """Read history from a little before `since`; de-duplication drops what is already shown."""
        after: str | None = ulid.lowest(max(0, int((since - 30) * 1000)))
        found = 0
        while after:
            url = f"{self._read_url or self.http_url}/rooms/{self.room}/messages"
            params = {"after": after, "limit": "100", "location": self.location}
            headers = {"Authorization": f"Bearer {self._token}"}
            timeout = aiohttp.ClientTimeout(total=5)
            async with session.get(url, params=params, headers=headers, timeout=timeout) as response:
                if response.status != 200:
                    raise ConnectionError(f"history answered {response.status}")
                page = await response.json()
            for message in page["messages"]:
                found += message["id"] not in self.seen
                self._show(message, "history", page["region"])
            after = page["next"]
        return found

    # ------------------------------------------------------------------ connection
    async def run(self, stop: asyncio.Event, session: aiohttp.ClientSession) -> None:
        backoff = 0.2
        down_since: float | None = None
        heartbeat: asyncio.Task[None] | None = None
        while not stop.is_set():
            try:
                socket, read_url, direct_region = await self._connect(session)
            except (OSError, websockets.WebSocketException, TimeoutError) as error:
                if down_since is None:
                    down_since = time.time()
                    self.outages.append(Outage(down_since, reason=f"connect: {type(error).__name__}"))
                await asyncio.sleep(backoff * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not crypto
                backoff = min(backoff * 2, 5.0)
                continue
            self._socket, self._read_url = socket, read_url
            routed = socket.response.headers.get("X-Routed-Region") if socket.response else None
            self.region = direct_region or routed
            self.connections.append((time.time(), self.region))
            backoff = 0.2
            try:
                if down_since is not None:
                    await self.catch_up(session, down_since)
                    self.outages[-1].end = time.time()
                    down_since = None
                self._connected.set()
                for message_id, text in list(self._outbox.items()):
                    await self._send(message_id, text)
                if self.heartbeat is not None:
                    heartbeat = asyncio.create_task(self._heartbeat(socket, self.heartbeat))
                async for raw in socket:
                    self._on_frame(json.loads(raw))
            except (websockets.WebSocketException, OSError, ConnectionError, TimeoutError):
                pass
            finally:
                self._connected.clear()
                self._socket = None
                if heartbeat is not None:
                    heartbeat.cancel()
            if not stop.is_set() and down_since is None:
                down_since = time.time()
                self.outages.append(Outage(down_since, reason=self._why_closed or "connection closed"))
            heartbeat, self._why_closed = None, ""

    async def _heartbeat(self, socket: Any, quiet: float) -> None:
        """Ping after `quiet` s (±10%) without a frame; no frame within `pong_timeout`: close."""
        while True:
            self._framed.clear()
            try:
                await asyncio.wait_for(self._framed.wait(), quiet * random.uniform(0.9, 1.1))  # noqa: S311
                continue  # a frame came: the silence starts again
            except TimeoutError:
                pass
            await socket.send(json.dumps({"action": "ping"}))
            try:
                await asyncio.wait_for(self._framed.wait(), self.pong_timeout)
            except TimeoutError:
                self._why_closed = "no pong"
                await socket.close()  # the read loop ends: reconnect elsewhere, catch up
                return

    async def _sign_in(self, session: aiohttp.ClientSession) -> str:
        """A guest session, from the routed name or else any region's own endpoint (sessions
        work in every region)."""
        for http_url in [self.http_url, *(http for _, http in self.direct.values())]:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.post(
                    f"{http_url}/session",
                    json={"name": self.name},
                    params={"location": self.location},
                    timeout=aiohttp.ClientTimeout(total=5),
                ) as response:
                    if response.status == 201:
                        token: str = (await response.json())["token"]
                        return token
        raise ConnectionError("no region signed us in")

    async def _connect(self, session: aiohttp.ClientSession) -> tuple[Any, str, str | None]:
        """The routed name first; if it does not answer (its health check has not caught up
        with a dead region yet), each other region's own endpoint, as the browser client does."""
        if not self._token:
            self._token = await self._sign_in(session)
        query = urllib.parse.urlencode({"room": self.room, "token": self._token})
        # After a silent connection (no pong), as the page: the routed name may well still answer
        # from that region (its API Gateway is up), so go straight to another region's endpoint.
        silent = bool(self.outages) and self.outages[-1].end is None and self.outages[-1].reason == "no pong"
        candidates = ([] if silent and self.region else [(None, self.ws_url, self.http_url)]) + [
            (region, ws_url, http_url)
            for region, (ws_url, http_url) in self.direct.items()
            if region != self.region
        ]
        error: BaseException = ConnectionError("no endpoint")
        for region, ws_url, http_url in candidates:
            try:
                socket = await websockets.connect(
                    f"{ws_url}{'&' if '?' in ws_url else '?'}{query}",
                    open_timeout=5,
                    # Senders also watch with protocol pings; an idle client, like the page (browsers
                    # cannot send them), only with its heartbeat.
                    ping_interval=None if self.heartbeat is not None else 2,
                    ping_timeout=4,
                    close_timeout=2,
                )
            except (OSError, websockets.WebSocketException, TimeoutError) as failure:
                if isinstance(failure, InvalidStatus) and failure.response.status_code == 401:
                    self._token = ""  # refused: sign in again on the next attempt
                error = failure
                continue
            return socket, http_url, region
        raise error

    async def _send(self, message_id: str, text: str) -> None:
        frame = {"action": "sendMessage", "room": self.room, "id": message_id, "text": text}
        self._last_send[message_id] = time.time()
        if self._socket is not None:
            with contextlib.suppress(websockets.WebSocketException):  # stays in the outbox
                await self._socket.send(json.dumps(frame))

    async def send_steadily(self, stop_sending: asyncio.Event) -> None:
        interval = 1.0 / self.rate
        sequence = 0
        while not stop_sending.is_set():
            message_id = ulid.new()
            sequence += 1
            text = f"{self.name} #{sequence}"
            self._outbox[message_id] = text
            self.sent[message_id] = time.time()
            await self._send(message_id, text)
            # An ack that never came (the region died under it): resend with the same id.
            for old_id, old_text in list(self._outbox.items()):
                if time.time() - self._last_send[old_id] > 3 and self._connected.is_set():
                    await self._send(old_id, old_text)
            await asyncio.sleep(interval * random.uniform(0.8, 1.2))  # noqa: S311

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def outbox_empty(self) -> bool:
        return not self._outbox

    def outage_seconds(self, now: float) -> float:
        return sum((o.end or now) - o.start for o in self.outages)

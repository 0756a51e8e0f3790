"""Synthetic chat users: senders send at a steady rate, listeners send nothing and only watch the
room. Both judge their region by the service it gives them, by the clients' rule
(chatclient.judge, the chat page's rule too), not by the state of their socket:

- a send fails on an `unavailable`/`internal_error` frame for its id, on API Gateway's bare
  "Internal server error" frame, or with no ack within 3 s; it is resent once on the same socket,
  and a second failure in a row leaves the region;
- the heartbeat (`{"action": "ping"}` after 20 s of silence in an active room, 150 s otherwise)
  fails on an error frame or no pong within 10 s, and a pong naming a newer message than the
  client holds that is not pushed within 3 s is a gap: either leaves the region;
- leaving closes the socket, marks the region sick (1 minute, doubling), and reconnects to a
  region not sick, straight to its own endpoint; then the client catches up from history and
  resends its outbox with the same ids. It never moves back on its own.

Each signs in as a guest (`POST /session`), connects with `?room&token`, reads history with
`Authorization: Bearer`, and shows each message id once."""

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
from chatclient.judge import RULE, Judge, SickRegions, Timing, Verdict
from drill.changes import Changes

PUMP_SECONDS = 0.05  # how often a connection looks at its deadlines and its outbox
RETRY_LATER_SECONDS = 1.0  # a throttled send waits this long before it goes again
# At most this many sends awaiting their answer on one socket, as a person's page has a few: an
# outbox that grew while the client was away goes out at the pace the region answers, not in one
# burst whose tail would wait past the ack timeout (or past the per-user burst) and fail a healthy
# region. Every one of them is still judged by the rule.
MAX_IN_FLIGHT = 5
CATCH_UP_MARGIN = 30.0  # seconds of history read before what the client holds, after a gap
SIGN_IN_PATIENCE = 30.0  # seconds a client waits out the guest sign-in meter before giving up


@dataclass
class Outage:
    start: float
    end: float | None = None
    reason: str = ""
    region: str | None = None  # where it ended: connected there and caught up


@dataclass
class SyntheticClient:
    name: str
    location: str
    room: str
    ws_url: str
    http_url: str
    rate: float  # messages per second (0: a listener)
    direct: dict[str, tuple[str, str]] = field(default_factory=dict)  # region -> its own (ws, http) URLs
    timing: Timing = RULE
    sent: dict[str, float] = field(default_factory=dict)  # id -> first send time
    acked: dict[str, tuple[float, str]] = field(default_factory=dict)  # id -> (time, acceptedRegion)
    rejected: dict[str, str] = field(default_factory=dict)
    shown: list[str] = field(default_factory=list)  # what the user sees, in arrival order
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> first arrival
    live_frames: dict[str, list[str]] = field(default_factory=dict)  # id -> regions that pushed it
    outages: list[Outage] = field(default_factory=list)
    failures: list[tuple[float, str]] = field(default_factory=list)  # (time, why): failed sends, pings
    leaves: list[tuple[float, str | None, str]] = field(default_factory=list)  # (time, region, why)
    connections: list[tuple[float, str | None]] = field(default_factory=list)  # (time, region)
    region: str | None = None
    judge: Judge | None = None
    sick: SickRegions = field(default_factory=lambda: SickRegions(time.time))
    changes: Changes = field(default_factory=Changes)  # its edits and deletes (drill/changes.py)
    _socket: Any = None
    _outbox: dict[str, str] = field(default_factory=dict)
    _not_before: dict[str, float] = field(default_factory=dict)  # id -> earliest next send
    _read_url: str = ""
    _connected: asyncio.Event = field(default_factory=asyncio.Event)
    _token: str = ""
    _user_id: str = ""  # the session's user.id: who the room's presence lists for this client
    _why_closed: str = ""  # set when we close the connection ourselves

    def __post_init__(self) -> None:
        self.sick = SickRegions(time.time, self.timing)

    @property
    def role(self) -> str:
        return "sender" if self.rate > 0 else "listener"

    # ------------------------------------------------------------------ receiving
    def _show(self, message: dict[str, Any], via: str, region: str) -> None:
        self.changes.observe(message)
        if self.judge is not None:
            self.judge.held(message["id"])
        if message["id"] in self.seen:
            return
        self.seen[message["id"]] = {
            "at": time.time(),
            "via": via,
            "region": region,
            "acceptedRegion": message["acceptedRegion"],
        }
        self.shown.append(message["id"])

    async def _on_frame(self, frame: dict[str, Any], judge: Judge) -> None:
        verdict = judge.received(frame)
        if verdict.kind == "ack" and verdict.id in self._outbox:
            del self._outbox[verdict.id]
            self.acked[verdict.id] = (time.time(), frame["acceptedRegion"])
            self.changes.acked(verdict.id)
        elif verdict.kind == "message":
            message_id = frame["message"]["id"]
            self.live_frames.setdefault(message_id, []).append(frame["deliveredBy"])
            self._show(frame["message"], "live", frame["deliveredBy"])
        await self._follow(verdict)

    async def _follow(self, verdict: Verdict) -> None:
        """Do what the rule said."""
        now = time.time()
        if verdict.kind == "resend" and verdict.id is not None:
            self.failures.append((now, verdict.reason))
            self._not_before[verdict.id] = now + self.timing.resend_after_ms / 1000
        elif verdict.kind == "later" and verdict.id is not None:
            self._not_before[verdict.id] = now + RETRY_LATER_SECONDS
        elif verdict.kind == "refused" and verdict.id in self.changes.outbox:
            # A change refused (its message not here yet, after a failover) is sent again later.
            self._not_before[verdict.id] = now + RETRY_LATER_SECONDS
        elif verdict.kind == "refused" and verdict.id in self._outbox:
            self.rejected[verdict.id] = verdict.reason
            del self._outbox[verdict.id]
        elif verdict.kind == "leave" and self._socket is not None and not self._why_closed:
            self.failures.append((now, verdict.reason))
            self.leaves.append((now, self.region, verdict.reason))
            if self.region is not None:
                self.sick.mark(self.region)
            self._why_closed = f"left: {verdict.reason}"
            await self._socket.close()  # the read loop ends: reconnect elsewhere, catch up

    async def catch_up(self, session: aiohttp.ClientSession, since: float, everything: bool = False) -> int:
        """Read history from CATCH_UP_MARGIN before the newest message held (the rule reads after
        it: but a message written elsewhere a moment earlier, that the failing region never
        pushed, has an older id; the margin covers replication), or, with `everything` or
        nothing held, from that margin before `since`. De-duplication drops what is shown."""
        newest = self.judge.newest_held if self.judge is not None else ""
        start = ulid.timestamp_ms(newest) / 1000 if newest and not everything else since
        after: str | None = ulid.lowest(max(0, int((start - CATCH_UP_MARGIN) * 1000)))
        found = 0
        while after:
            url = f"{self._read_url or self.http_url}/rooms/{self.room}/messages"
            params = {"after": after, "limit": "100", "location": self.location}
            timeout = aiohttp.ClientTimeout(total=5)
            async with session.get(url, params=params, headers=self.auth, timeout=timeout) as response:
                if response.status != 200:
                    raise ConnectionError(f"history answered {response.status}")
                page = await response.json()
            for message in page["messages"]:
                found += message["id"] not in self.seen
                self._show(message, "history", page["region"])
            after = page["next"]
        return found

    @property
    def token(self) -> str:
        return self._token

    @property
    def user_id(self) -> str:
        """The user of its current session ("" before the first sign-in); a new sign-in (after a
        refused token) is a new guest, with a new id."""
        return self._user_id

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    # ------------------------------------------------------------------ connection
    async def run(self, stop: asyncio.Event, session: aiohttp.ClientSession) -> None:
        backoff = 0.2
        down_since: float | None = None
        while not stop.is_set():
            try:
                socket, read_url, region = await self._connect(session)
            except (OSError, websockets.WebSocketException, TimeoutError) as error:
                if down_since is None:
                    down_since = time.time()
                    self.outages.append(Outage(down_since, reason=f"connect: {type(error).__name__}"))
                await asyncio.sleep(backoff * random.uniform(0.5, 1.5))  # noqa: S311 - jitter, not crypto
                backoff = min(backoff * 2, 5.0)
                continue
            self._socket, self._read_url, self.region = socket, read_url, region
            self.connections.append((time.time(), region))
            previous = self.judge
            judge = self.judge = Judge(time.time, self.timing)
            if previous is not None:
                judge.last_activity, judge.newest_held = previous.last_activity, previous.newest_held
            self._not_before.clear()  # a new socket: the whole outbox goes again, now
            backoff = 0.2
            pump: asyncio.Task[None] | None = None
            try:
                if down_since is not None:
                    await self.catch_up(session, down_since)
                    self.outages[-1].end, self.outages[-1].region = time.time(), region
                    down_since = None
                self._connected.set()
                pump = asyncio.create_task(self._pump(socket, judge))
                async for raw in socket:
                    await self._on_frame(json.loads(raw), judge)
            except (websockets.WebSocketException, OSError, ConnectionError, TimeoutError):
                pass
            finally:
                self._connected.clear()
                self._socket = None
                if pump is not None:
                    pump.cancel()
            if not stop.is_set() and down_since is None:
                down_since = time.time()
                self.outages.append(Outage(down_since, reason=self._why_closed or "connection closed"))
            self._why_closed = ""

    async def _pump(self, socket: Any, judge: Judge) -> None:
        """The connection's clock: sends what the outbox owes, pings when the heartbeat is due,
        and asks the rule what the deadlines that passed decide."""
        while True:
            now = time.time()
            owed = [*self._outbox, *self.changes.outbox]
            for message_id in [m for m in owed if m not in judge.in_flight]:
                if len(judge.in_flight) >= MAX_IN_FLIGHT:
                    break
                if now >= self._not_before.get(message_id, 0.0):
                    self._not_before[message_id] = now + self.timing.ack_timeout_ms / 1000
                    await self._send(socket, judge, message_id)
            due = judge.ping_due()
            if due is not None and now >= due:
                judge.pinged()
                with contextlib.suppress(websockets.WebSocketException):
                    await socket.send(json.dumps({"action": "ping"}))
            verdict = judge.check()
            if verdict.kind != "none":
                await self._follow(verdict)
                if verdict.kind == "leave":
                    return
            await asyncio.sleep(PUMP_SECONDS)

    async def _sign_in(self, session: aiohttp.ClientSession) -> str:
        """A guest session, from the routed name or else any region's own endpoint (sessions
        work in every region). Guest sign-ins are metered per address (the drill's clients share
        one): a `rate_limited` answer is waited out, as told, up to SIGN_IN_PATIENCE seconds."""
        deadline = time.monotonic() + SIGN_IN_PATIENCE
        while True:
            wait_ms = 0
            for http_url in [self.http_url, *(http for _, http in self.direct.values())]:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError, KeyError):
                    async with session.post(
                        f"{http_url}/session",
                        json={"name": self.name},
                        params={"location": self.location},
                        timeout=aiohttp.ClientTimeout(total=5),
                    ) as response:
                        if response.status == 201:
                            answer = await response.json()
                            self._user_id = answer["user"]["id"]
                            token: str = answer["token"]
                            return token
                        if response.status == 429:
                            answer = await response.json()
                            wait_ms = max(wait_ms, int(answer["error"].get("retryAfterMs", 1000)))
            if not wait_ms or time.monotonic() + wait_ms / 1000 > deadline:
                raise ConnectionError("no region signed us in")
            await asyncio.sleep(wait_ms / 1000)

    def candidates(self) -> list[tuple[str | None, str, str]]:
        """Where to connect, in order, as (region or None for the routed name, ws, http). While
        any region is sick, only the regions' own endpoints, the sick ones left out (every one
        sick: the one whose mark ends first): the routed name may well still answer from a sick
        region, whose API Gateway is up. Otherwise the routed name first, then each region's own
        endpoint, the one just lost last."""
        regions = list(self.direct)
        if self.sick.any():
            return [(r, *self.direct[r]) for r in self.sick.choose(regions)]
        regions.sort(key=lambda region: region == self.region)
        return [(None, self.ws_url, self.http_url), *((r, *self.direct[r]) for r in regions)]

    async def _connect(self, session: aiohttp.ClientSession) -> tuple[Any, str, str | None]:
        if not self._token:
            self._token = await self._sign_in(session)
        query = urllib.parse.urlencode({"room": self.room, "token": self._token})
        error: BaseException = ConnectionError("no endpoint")
        for region, ws_url, http_url in self.candidates():
            try:
                socket = await websockets.connect(
                    f"{ws_url}{'&' if '?' in ws_url else '?'}{query}",
                    open_timeout=5,
                    ping_interval=None,  # as the page (browsers cannot send protocol pings)
                    close_timeout=2,
                )
            except (OSError, websockets.WebSocketException, TimeoutError) as failure:
                if isinstance(failure, InvalidStatus) and failure.response.status_code == 401:
                    self._token = ""  # refused: sign in again on the next attempt
                error = failure
                continue
            # The local front door says where it routed; a region's own endpoint is that region.
            routed = socket.response.headers.get("X-Routed-Region") if socket.response else None
            return socket, http_url, region or routed
        raise error

    async def _send(self, socket: Any, judge: Judge, message_id: str) -> None:
        if message_id in self._outbox:
            frame = {
                "action": "sendMessage",
                "room": self.room,
                "id": message_id,
                "text": self._outbox[message_id],
            }
        else:
            frame = Changes.frame(self.room, message_id, self.changes.outbox[message_id])
        judge.sent(message_id)
        with contextlib.suppress(websockets.WebSocketException):  # stays in the outbox
            await socket.send(json.dumps(frame))

    async def send_steadily(self, stop_sending: asyncio.Event) -> None:
        """A new message every 1/rate s (±20%); the connection's pump sends it."""
        interval = 1.0 / self.rate
        sequence = 0
        while not stop_sending.is_set():
            sequence += 1
            message_id = ulid.new()
            self._outbox[message_id] = f"{self.name} #{sequence}"
            self.sent[message_id] = time.time()
            self.changes.plan(message_id, sequence, self._outbox[message_id])
            await asyncio.sleep(interval * random.uniform(0.8, 1.2))  # noqa: S311

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def in_room(self) -> bool:
        """Whether it holds an open WebSocket to the room, caught up or not: what presence counts."""
        return self._socket is not None

    def outbox_empty(self) -> bool:
        return not self._outbox

    def outage_seconds(self, now: float) -> float:
        return sum((o.end or now) - o.start for o in self.outages)

"""WebSocket chat clients for the benchmarks: each signs in as a guest (`POST /session`), connects
with `?room&token`, and records when every message frame arrives.

They judge the region by the clients' rule (chatclient.judge), as the chat page and the drill do,
but a benchmark measures one region, so there is nowhere to go: a send that fails (an
`unavailable`/`internal_error` frame, API Gateway's bare "Internal server error" frame, or no ack
within 3 s) is resent once with the same id on the same socket after 500 ms; a second failure in a
row ends the client (its socket closed, `left` saying why) and its next `send` raises, so the
benchmark stops with the reason instead of measuring a failing region. A refused or throttled
message ends it the same way (the benchmarks run without per-user limits). A missing ack is judged
at the client's next send or frame: no timer per client, so none adds to what is measured. They
send no heartbeat: a benchmark lasts seconds, not the minutes an idle socket needs one for."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import websockets

from chatclient.judge import RULE, Judge, Verdict


@dataclass
class Expected:
    """One sent message: when it left, and when each watched client got it."""

    sent: float
    expected: int
    received: list[float] = field(default_factory=list)
    acked: float | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


def state_key(message_id: str, version: int = 1) -> str:
    """What the tracker follows: a new message by its id, a change of it (an edit, a delete) by its
    id and the version the change makes."""
    return message_id if version == 1 else f"{message_id}@{version}"


class Tracker:
    def __init__(self) -> None:
        self.pending: dict[str, Expected] = {}

    def expect(self, key: str, watchers: int) -> Expected:
        entry = Expected(sent=time.perf_counter(), expected=watchers)
        self.pending[key] = entry
        return entry


# Told of every presence and typing frame a client receives: (client, frame, perf_counter time).
FrameObserver = Callable[["ChatClient", dict[str, Any], float], None]


class ChatClient:
    def __init__(
        self,
        socket: Any,
        room: str,
        name: str,
        tracker: Tracker,
        watched: bool,
        observer: FrameObserver | None = None,
    ) -> None:
        self.socket = socket
        self.room = room
        self.name = name
        self.tracker = tracker
        self.watched = watched  # its receipts count towards the latency figures
        self.observer = observer
        self.judge = Judge(time.monotonic)
        self.left: str | None = None  # why the rule ended this client
        self._texts: dict[str, str] = {}  # unacknowledged sends, for the one resend
        self._resends: set[asyncio.Task[None]] = set()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(
        cls,
        region: Mapping[str, str],
        room: str,
        name: str,
        tracker: Tracker,
        *,
        watched: bool,
        observer: FrameObserver | None = None,
        token: str | None = None,
    ) -> ChatClient:
        """Sign in at `region`'s HTTP API (unless given the `token` of a session already made: a
        second tab) and connect to its WebSocket API (stack.json's entry)."""
        token = token or await sign_in(region, name)
        socket = await websockets.connect(
            f"{region['websocketUrl']}?room={room}&token={token}", max_queue=None
        )
        return cls(socket, room, name, tracker, watched, observer)

    async def _read(self) -> None:
        try:
            async for raw in self.socket:
                now = time.perf_counter()
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "message":
                    message = frame["message"]
                    entry = self.tracker.pending.get(state_key(message["id"], message.get("version", 1)))
                    if entry is not None and self.watched:
                        entry.received.append(now)
                        if len(entry.received) >= entry.expected:
                            entry.done.set()
                elif kind in ("presence", "typing") and self.observer is not None:
                    self.observer(self, frame, now)
                elif kind == "ack":
                    self._texts.pop(frame["id"], None)
                    entry = self.tracker.pending.get(frame["id"])
                    if entry is not None and entry.acked is None:
                        entry.acked = now
                await self._follow(self.judge.received(frame), frame)
        except websockets.ConnectionClosed:
            pass

    async def _follow(self, verdict: Verdict, frame: Any = None) -> None:
        if verdict.kind == "resend" and verdict.id in self._texts:
            resend = asyncio.create_task(self._resend(verdict.id))
            self._resends.add(resend)
            resend.add_done_callback(self._resends.discard)
        elif verdict.kind in ("refused", "later"):
            await self._end(f"the chat refused a benchmark message: {frame or verdict}")
        elif verdict.kind == "leave":
            await self._end(f"{self.name} left the region: {verdict.reason}")

    async def _resend(self, message_id: str) -> None:
        await asyncio.sleep(RULE.resend_after_ms / 1000)
        if self.left is None and message_id in self._texts:
            with contextlib.suppress(websockets.ConnectionClosed):
                await self._send_frame(message_id)

    async def _end(self, why: str) -> None:
        if self.left is None:
            self.left = why
            await self.socket.close()

    async def send(self, message_id: str, text: str) -> None:
        """Send a message; raises if the rule has ended this client (`left` says why)."""
        await self._follow(self.judge.check())
        if self.left is not None:
            raise RuntimeError(self.left)
        self._texts[message_id] = text
        await self._send_frame(message_id)

    async def typing(self) -> None:
        """Tell the room this client's user is typing (no ack comes back)."""
        await self.socket.send(json.dumps({"action": "typing", "room": self.room}))

    async def change(self, message_id: str, text: str | None) -> None:
        """Edit (`text`) or delete (None) one of this client's messages; the room is sent the new
        state as a message frame (the tracker follows it by `state_key`)."""
        if self.left is not None:
            raise RuntimeError(self.left)
        frame = {"action": "editMessage" if text is not None else "deleteMessage", "room": self.room}
        await self.socket.send(
            json.dumps(frame | {"id": message_id} | ({"text": text} if text is not None else {}))
        )

    async def _send_frame(self, message_id: str) -> None:
        frame = {"action": "sendMessage", "room": self.room, "id": message_id}
        self.judge.sent(message_id)
        await self.socket.send(json.dumps(frame | {"text": self._texts[message_id]}))

    async def close(self) -> None:
        await self.socket.close()
        self.reader.cancel()
        for resend in list(self._resends):
            resend.cancel()


async def sign_in(region: Mapping[str, str], name: str) -> str:
    """A guest session's token from `region`'s `POST /session`."""
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{region['httpUrl']}/session", json={"name": name}) as response,
    ):
        if response.status != 201:
            raise RuntimeError(f"sign-in refused: {response.status} {await response.text()}")
        token: str = (await response.json())["token"]
        return token


async def connect_many(
    region: Mapping[str, str],
    room: str,
    count: int,
    tracker: Tracker,
    *,
    watched: bool,
    prefix: str,
    observer: FrameObserver | None = None,
) -> list[ChatClient]:
    clients: list[ChatClient] = []
    for first in range(0, count, 10):  # a few at a time: $connect is a handler call each
        clients += await asyncio.gather(
            *(
                ChatClient.connect(region, room, f"{prefix}{i}", tracker, watched=watched, observer=observer)
                for i in range(first, min(count, first + 10))
            )
        )
    return clients


async def close_all(clients: Sequence[ChatClient]) -> None:
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)

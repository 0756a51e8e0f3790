"""WebSocket chat clients for the benchmarks: each signs in as a guest (`POST /session`), connects
with `?room&token`, and records when every message frame arrives."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import websockets


@dataclass
class Expected:
    """One sent message: when it left, and when each watched client got it."""

    sent: float
    expected: int
    received: list[float] = field(default_factory=list)
    acked: float | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Tracker:
    def __init__(self) -> None:
        self.pending: dict[str, Expected] = {}

    def expect(self, message_id: str, watchers: int) -> Expected:
        entry = Expected(sent=time.perf_counter(), expected=watchers)
        self.pending[message_id] = entry
        return entry


class ChatClient:
    def __init__(self, socket: Any, room: str, name: str, tracker: Tracker, watched: bool) -> None:
        self.socket = socket
        self.room = room
        self.name = name
        self.tracker = tracker
        self.watched = watched  # its receipts count towards the latency figures
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(
        cls, region: Mapping[str, str], room: str, name: str, tracker: Tracker, *, watched: bool
    ) -> ChatClient:
        """Sign in at `region`'s HTTP API and connect to its WebSocket API (stack.json's entry)."""
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{region['httpUrl']}/session", json={"name": name}) as response,
        ):
            if response.status != 201:
                raise RuntimeError(f"sign-in refused: {response.status} {await response.text()}")
            token = (await response.json())["token"]
        socket = await websockets.connect(
            f"{region['websocketUrl']}?room={room}&token={token}", max_queue=None
        )
        return cls(socket, room, name, tracker, watched)

    async def _read(self) -> None:
        try:
            async for raw in self.socket:
                now = time.perf_counter()
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "message":
                    entry = self.tracker.pending.get(frame["message"]["id"])
                    if entry is not None and self.watched:
                        entry.received.append(now)
                        if len(entry.received) >= entry.expected:
                            entry.done.set()
                elif kind == "ack":
                    entry = self.tracker.pending.get(frame["id"])
                    if entry is not None and entry.acked is None:
                        entry.acked = now
                elif kind == "error":
                    raise RuntimeError(f"the chat refused a benchmark message: {frame}")
        except websockets.ConnectionClosed:
            pass

    async def send(self, message_id: str, text: str) -> None:
        frame = {"action": "sendMessage", "room": self.room, "id": message_id}
        await self.socket.send(json.dumps(frame | {"text": text}))

    async def close(self) -> None:
        await self.socket.close()
        self.reader.cancel()


async def connect_many(
    region: Mapping[str, str], room: str, count: int, tracker: Tracker, *, watched: bool, prefix: str
) -> list[ChatClient]:
    clients: list[ChatClient] = []
    for first in range(0, count, 10):  # a few at a time: $connect is a handler call each
        clients += await asyncio.gather(
            *(
                ChatClient.connect(region, room, f"{prefix}{i}", tracker, watched=watched)
                for i in range(first, min(count, first + 10))
            )
        )
    return clients


async def close_all(clients: Sequence[ChatClient]) -> None:
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)

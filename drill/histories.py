"""After the restore, whether every region holds the same history of the drill's room, each
message in the same state, with every edit and delete the senders asked for (drill/changes.py):
each read from the region's own endpoint, page by page, until they agree or the time is up
(replication into a region that was failing catches up after the restore)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from chat import ulid
from drill.changes import HasChanges, check

PAGE = 100


async def history(
    session: aiohttp.ClientSession, http_url: str, room: str, token: str
) -> list[dict[str, Any]]:
    """Every message of `room` in the region behind `http_url`, oldest first."""
    messages: list[dict[str, Any]] = []
    after: str | None = ulid.lowest(0)
    while after:
        async with session.get(
            f"{http_url}/rooms/{room}/messages",
            params={"after": after, "limit": str(PAGE)},
            headers={"Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=5),
        ) as response:
            if response.status != 200:
                raise ConnectionError(f"{http_url} answered {response.status}")
            page = await response.json()
        messages += page["messages"]
        after = page["next"]
    return messages


def state(message: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(message.get(field) for field in ("id", "authorId", "version", "deleted", "text"))


async def compare(
    session: aiohttp.ClientSession,
    endpoints: dict[str, tuple[str, str]],
    room: str,
    token: str,
    deadline: float,
    clients: list[HasChanges],
) -> dict[str, Any]:
    """{"equal", "messages": {region: count}, "only_in": {region: [a few ids]}, "unread": [regions
    whose history could not be read], "changes": drill.changes.check's}; looks again every second
    until every history was read, they agree and hold every change asked for, or `deadline`
    (time.time()) has passed. A history not read is not equal."""
    held: dict[str, list[dict[str, Any]]] = {}
    while True:
        unread = []
        for region, (_, http_url) in endpoints.items():
            try:
                held[region] = await history(session, http_url, room, token)
            except (aiohttp.ClientError, ConnectionError, TimeoutError) as error:
                print(f"  history of {region} not read: {error!r}", flush=True)
                unread.append(region)
                held.setdefault(region, [])
        ids = {region: [m["id"] for m in messages] for region, messages in held.items()}
        everywhere = set.intersection(*(set(i) for i in ids.values())) if ids else set()
        equal = not unread and len({tuple(map(state, messages)) for messages in held.values()}) <= 1
        changes = check(held, clients)
        if (equal and changes["ok"]) or time.time() >= deadline:
            return {
                "equal": equal,
                "unread": unread,
                "messages": {region: len(i) for region, i in ids.items()},
                "only_in": {region: [m for m in i if m not in everywhere][:5] for region, i in ids.items()},
                "changes": changes,
            }
        await asyncio.sleep(1.0)

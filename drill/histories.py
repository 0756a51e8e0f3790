"""After the restore, whether every region holds the same history of the drill's room: each read
from the region's own endpoint, page by page, until they agree or the time is up (replication
into a region that was failing catches up after the restore)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from chat import ulid

PAGE = 100


async def history(session: aiohttp.ClientSession, http_url: str, room: str, token: str) -> list[str]:
    """Every message id of `room` in the region behind `http_url`, oldest first."""
    ids: list[str] = []
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
        ids += [message["id"] for message in page["messages"]]
        after = page["next"]
    return ids


async def compare(
    session: aiohttp.ClientSession,
    endpoints: dict[str, tuple[str, str]],
    room: str,
    token: str,
    deadline: float,
) -> dict[str, Any]:
    """{"equal", "messages": {region: count}, "only_in": {region: [a few ids]}, "unread": [regions
    whose history could not be read]}; looks again every second until every history was read and
    they agree, or `deadline` (time.time()) has passed. A history not read is not equal."""
    held: dict[str, list[str]] = {}
    while True:
        unread = []
        for region, (_, http_url) in endpoints.items():
            try:
                held[region] = await history(session, http_url, room, token)
            except (aiohttp.ClientError, ConnectionError, TimeoutError) as error:
                print(f"  history of {region} not read: {error!r}", flush=True)
                unread.append(region)
                held.setdefault(region, [])
        everywhere = set.intersection(*(set(ids) for ids in held.values())) if held else set()
        equal = not unread and len({tuple(ids) for ids in held.values()}) <= 1
        if equal or time.time() >= deadline:
            return {
                "equal": equal,
                "unread": unread,
                "messages": {region: len(ids) for region, ids in held.items()},
                "only_in": {
                    region: [i for i in ids if i not in everywhere][:5] for region, ids in held.items()
                },
            }
        await asyncio.sleep(1.0)

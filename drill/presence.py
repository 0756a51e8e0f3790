"""After the restore, whether every region's presence (`GET /rooms/{room}/presence`) lists exactly
the drill's clients that hold a socket to the room, each once, and counts them: each read from
the region's own endpoint, again and again until every region does or the time is up (a region
that failed may list its lost connections for up to a minute, by the contract)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

import aiohttp

# Seconds from the restore by which every region must list exactly the connected clients: the
# contract's minute for a failed region's users to go, and a margin for the reads.
DEADLINE_AFTER_RESTORE = 75.0
POLL_SECONDS = 0.5  # between rounds of reads: the deadline bounds the wait, it is not a sleep
MEMBERS_LISTED = 100  # the contract lists at most this many members; `count` is always the full number


class Present(Protocol):
    """A drill client as presence sees it."""

    @property
    def user_id(self) -> str: ...
    @property
    def in_room(self) -> bool: ...


async def presence(session: aiohttp.ClientSession, http_url: str, room: str, token: str) -> dict[str, Any]:
    """The presence of `room` in the region behind `http_url`: {"count", "members", "region"}."""
    async with session.get(
        f"{http_url}/rooms/{room}/presence",
        headers={"Authorization": f"Bearer {token}"},
        timeout=aiohttp.ClientTimeout(total=5),
    ) as response:
        if response.status != 200:
            raise ConnectionError(f"{http_url} answered {response.status}")
        answer: Any = await response.json()
    members = answer.get("members") if isinstance(answer, dict) else None
    if (
        not isinstance(members, list)
        or not all(isinstance(member, dict) for member in members)
        or not isinstance(answer.get("count"), int)
    ):
        raise ValueError(f"{http_url} answered no count and members: {str(answer)[:200]}")
    shaped: dict[str, Any] = answer
    return shaped


def judge(answer: dict[str, Any], connected: set[str]) -> dict[str, Any]:
    """One region's answer against the user ids connected: {"count" (as it says), "listed" (members
    it names), "missing" (connected, not listed), "ghosts" (listed, not connected), "doubled"
    (listed more than once), "exact"}. With more connected users than the contract lists, only
    that many members are expected, and none can be called missing."""
    ids = [str(member.get("id")) for member in answer["members"]]
    listed = set(ids)
    complete = len(connected) <= MEMBERS_LISTED
    verdict = {
        "count": answer["count"],
        "listed": len(ids),
        "missing": sorted(connected - listed) if complete else [],
        "ghosts": sorted(listed - connected),
        "doubled": sorted(user for user, times in Counter(ids).items() if times > 1),
    }
    verdict["exact"] = (
        not verdict["missing"]
        and not verdict["ghosts"]
        and not verdict["doubled"]
        and answer["count"] == len(connected)
        and (complete or len(ids) == MEMBERS_LISTED)
    )
    return verdict


async def compare(
    session: aiohttp.ClientSession,
    endpoints: dict[str, tuple[str, str]],
    room: str,
    token: str,
    clients: Sequence[Present],
    restored_at: float,
    deadline: float,
    interval: float = POLL_SECONDS,
) -> dict[str, Any]:
    """{"equal", "connected" (clients holding a socket at the last read), "seconds" (from the
    restore to the read that found every region exact, None if none did), "first_read_seconds"
    (from the restore to the first read: `seconds` cannot be less), "unread" (regions whose
    presence could not be read), "regions": {region: judge's}}; reads every region again every
    `interval` s until every region is exact or `deadline` (time.time()) has passed. A presence
    not read is not equal. Who is connected is asked again before each round: a client may move."""
    first_read = time.time()
    while True:
        connected = {c.user_id for c in clients if c.in_room and c.user_id}
        regions: dict[str, dict[str, Any]] = {}
        unread = []
        for region, (_, http_url) in endpoints.items():
            try:
                regions[region] = judge(await presence(session, http_url, room, token), connected)
            except (aiohttp.ClientError, ConnectionError, TimeoutError, ValueError) as error:
                print(f"  presence of {region} not read: {error!r}", flush=True)
                unread.append(region)
        equal = not unread and all(verdict["exact"] for verdict in regions.values())
        if equal or time.time() >= deadline:
            return {
                "equal": equal,
                "connected": len(connected),
                "seconds": round(time.time() - restored_at, 2) if equal else None,
                "first_read_seconds": round(first_read - restored_at, 2),
                "unread": unread,
                "regions": regions,
            }
        await asyncio.sleep(interval)

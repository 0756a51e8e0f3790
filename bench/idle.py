"""The idle connection-month: what one connection that sends nothing costs in a month (issues 17
and 23). Its connection minutes, its heartbeats, the reconnect that API Gateway's 2-hour limit
forces every 2 hours and the session renewals. The calls are counted on the local stack (one
region, one connection); the month is those counts times how often each happens; the prices are
bench.cost's (docs/deploy.md's).

A heartbeat is a ping and its pong (two WebSocket messages) and one DynamoDB Query, made by API
Gateway itself (no function): eventually consistent, so half a read request unit per 4 KB of the
item it reads, the room's newest message. The item's size matters: the month is priced with the
message this benchmark writes (a typical chat line) and, next to it, with the largest message the
API accepts. The active room's faster heartbeat (after 20 s of silence within 5 minutes of a
message) is priced per message, not per month: it is what a message costs each listener then."""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from collections.abc import Mapping
from typing import Any

from bench.common import keeper_beats, local_stack, membership_item
from bench.cost import (
    BACKGROUND_POLLING,
    PRICES,
    PRICES_SOURCE,
    READ_UNIT_BYTES,
    SEND_GB_SECONDS,
    item_bytes,
    region_calls,
)
from bench.presence import keeper_month
from chatclient.judge import ACTIVE_HEARTBEAT_MS, ACTIVE_WINDOW_MS, HEARTBEAT_MS
from stack_definition.template import load_cached, region_names

MESSAGE = "apigateway.WebSocketMessage"
MONTH_MINUTES = 30 * 24 * 60
HEARTBEAT_SECONDS = HEARTBEAT_MS / 1000  # a ping after 150 s ± 10% of silence (chatclient.judge, the page)
BEFORE_HEARTBEAT_SECONDS = 15.0  # before issue 17: a ping after 15 s, answered by the `$default` function
CONNECTION_LIFETIME_MINUTES = 120  # API Gateway closes every connection after 2 hours; the page reconnects
IDLE_TARGET_DOLLARS = 0.05
IDLE_PRICES = {
    "websocketConnectionMinutePerMillion": 0.25,
    "httpApiRequestPerMillion": 1.00,
}
DYNAMODB_WRITES = ("dynamodb.PutItem", "dynamodb.DeleteItem", "dynamodb.UpdateItem")
DYNAMODB_READS = ("dynamodb.Query", "dynamodb.GetItem")  # a function's: 1 RRU each (under 4 KB)
QUIET_SECONDS = 1.0  # after a step that should start no background work: long enough to see some
KEEPER_ATTEMPTS = 4  # a count during which a presence keeper beat is made again
TYPICAL_TEXT = "Running five minutes late, start without me and I will catch up on the notes."
LARGEST_TEXT = "\U0001f600" * 4000  # 4,000 characters (the API's limit), 4 bytes each in UTF-8


def renewal_every_minutes() -> float:
    """The page renews its session 5 minutes before it ends (frontend/session.js); sessions last the
    template's SessionTtlSeconds."""
    return float(load_cached().context("").parameter("SessionTtlSeconds")) / 60 - 5


def _invocations(calls: Mapping[str, float]) -> float:
    return sum(n for op, n in calls.items() if op.startswith("lambda.Invoke:"))


def heartbeat_read_units(newest_item_bytes: int) -> float:
    """The heartbeat's Query: eventually consistent, the one item it reads rounded up to 4 KB
    (an empty room still costs the minimum, half a unit)."""
    return max(1, math.ceil(newest_item_bytes / READ_UNIT_BYTES)) * 0.5


def message_item_bytes(message: Mapping[str, Any]) -> int:
    """A stored message's item size, as the store writes it (bench.cost.item_bytes' rule)."""
    from chat.model import Message
    from chat.store import message_to_item

    fields = Message.__dataclass_fields__
    item = message_to_item(Message(**{k: message[k] for k in fields}), expires_at=1_800_000_000)
    return item_bytes({name: {kind: str(raw) for kind, raw in value.items()} for name, value in item.items()})


async def _quiet_counts(url: str, settled: str | None = None) -> dict[str, int]:
    """The region's counts since the last read (and reset), once `settled` (an operation that
    runs in the background, e.g. `$disconnect` after a close) has been counted; 10 s at most."""
    calls: dict[str, int] = {}
    for _ in range(100):
        calls = await asyncio.to_thread(region_calls, url)
        if settled is None or calls.get(settled):
            break
        await asyncio.sleep(0.1)
    await asyncio.to_thread(region_calls, url, "DELETE")
    # The event source mappings poll on their own clock (free, docs/deploy.md): not the connection's.
    return {op: n for op, n in calls.items() if not op.startswith(BACKGROUND_POLLING)}


async def _recv_answer(socket: Any, others: list[dict[str, Any]]) -> dict[str, Any]:
    """The answer to a heartbeat; presence and typing frames before it are kept in `others`."""
    while True:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), 10))
        if frame.get("type") not in ("presence", "typing"):
            return frame
        others.append(frame)


async def count_idle(info: dict[str, Any], beats: int) -> dict[str, Any]:
    """One idle connection's life in one region, counted: the 2-hour reconnect as the page makes
    it (make-before-break: the next connection opens, with the page's catch-up read, while the old
    one is still open; then the old one closes), so the user stays in the room throughout; a
    session renewal; `beats` heartbeats as the page sends them now (`ping`: API Gateway Queries
    the room's newest id) and as it sent them before (an action no route names: `$default`
    invoked its function). The room holds one typical message, so a ping reads it. Each count
    starts once the previous step's background work (a fan-out, `$disconnect`) is done, and
    QUIET_SECONDS after a step that should start none, so that one it did start is counted."""
    import aiohttp
    import websockets

    from chat import ulid

    region = info["regions"][region_names()[0]]
    url = region["managementUrl"]
    room = f"idle-{uuid.uuid4().hex[:12]}"
    others: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{region['httpUrl']}/session", json={"name": "idle"}) as response:
            session = await response.json()
        token, user_id = session["token"], session["user"]["id"]
        headers = {"Authorization": f"Bearer {token}"}
        newest = ulid.new()
        # Not counted: the connection of the page's first two hours (the user's first in the room:
        # it writes the membership and its `enter` is pushed to it), and a typical message in the
        # room, written and pushed to it, so that the heartbeats read a real item.
        old = await websockets.connect(f"{region['websocketUrl']}?room={room}&token={token}")
        message = {"id": newest, "text": TYPICAL_TEXT}
        async with http.post(
            f"{region['httpUrl']}/rooms/{room}/messages", json=message, headers=headers
        ) as r:
            assert r.status == 201, await r.text()
        while json.loads(await asyncio.wait_for(old.recv(), 10)).get("type") != "message":
            pass
        await asyncio.sleep(QUIET_SECONDS)
        await _quiet_counts(url)
        membership = await asyncio.to_thread(membership_item, info, room, user_id)
        beats_before = await asyncio.to_thread(keeper_beats, info)
        # The reconnect, counted: the next connection and its catch-up read, then the old one's close.
        socket = await websockets.connect(f"{region['websocketUrl']}?room={room}&token={token}")
        async with http.get(f"{region['httpUrl']}/rooms/{room}/messages", headers=headers) as response:
            (stored,) = (await response.json())["messages"]
        await asyncio.sleep(QUIET_SECONDS)
        connect = await _quiet_counts(url)
        await old.close()
        await asyncio.sleep(QUIET_SECONDS)
        disconnect = await _quiet_counts(url, settled="lambda.Invoke:DisconnectFunction")
        membership_after = await asyncio.to_thread(membership_item, info, room, user_id)
        async with http.post(f"{region['httpUrl']}/session", json={}, headers=headers) as response:
            await response.read()  # a renewal: the same user, a new token
        renewal = await _quiet_counts(url)
        pongs: list[dict[str, Any]] = []

        async def beat(frame: dict[str, str]) -> dict[str, float]:
            for _ in range(beats):
                await socket.send(json.dumps(frame))
                pongs.append(await _recv_answer(socket, others))
            return {op: n / beats for op, n in (await _quiet_counts(url)).items()}

        now = await beat({"action": "ping"})
        latest = {pong.get("latest") for pong in pongs}
        before = await beat({"action": "ping-before-issue-17"})
        beats_after = await asyncio.to_thread(keeper_beats, info)
        await socket.close()  # not counted: the user's last connection leaves the room
        await _quiet_counts(url, settled="lambda.Invoke:DisconnectFunction")
    reconnect = {op: connect.get(op, 0) + disconnect.get(op, 0) for op in {*connect, *disconnect}}
    typical, largest = message_item_bytes(stored), message_item_bytes({**stored, "text": LARGEST_TEXT})
    return {
        "keeperBeatDuringCount": beats_before != beats_after,
        "pongLatest": sorted(str(x) for x in latest),
        "pongNamesTheNewestMessage": latest == {newest},
        "framesBesidePongs": others,
        "newestItemBytes": {"typical": typical, "largest": largest},
        "perHeartbeat": dict(sorted(now.items())),
        "perHeartbeatBefore": dict(sorted(before.items())),
        "perReconnect": dict(sorted(reconnect.items())),
        "reconnectSteps": {
            "openNext": dict(sorted(connect.items())),
            "closeOld": dict(sorted(disconnect.items())),
        },
        "membershipUntouchedByReconnect": membership is not None and membership == membership_after,
        "perRenewal": dict(sorted(renewal.items())),
        "month": {
            "now": idle_month(now, reconnect, renewal, HEARTBEAT_SECONDS, heartbeat_read_units(typical)),
            "nowLargestItem": idle_month(
                now, reconnect, renewal, HEARTBEAT_SECONDS, heartbeat_read_units(largest)
            ),
            "before": idle_month(before, reconnect, renewal, BEFORE_HEARTBEAT_SECONDS, 0.0),
        },
        "activeRoom": active_room(now, heartbeat_read_units(typical)),
    }


def _dollars(calls: Mapping[str, float], heartbeat_rru: float | None = None) -> dict[str, float]:
    """What one occurrence of these counted calls costs, by line (the HTTP function's invocations
    are the HTTP API's requests: each of its routes integrates that one function). With
    `heartbeat_rru`, the Query is the heartbeat's (that many read units), not a function's."""
    p = PRICES | IDLE_PRICES
    reads = sum(calls.get(op, 0) for op in DYNAMODB_READS)
    return {
        "websocketMessages": calls.get(MESSAGE, 0) * p["websocketMessagePerMillion"] / 1e6,
        "httpRequests": calls.get("lambda.Invoke:HttpApiFunction", 0) * p["httpApiRequestPerMillion"] / 1e6,
        "lambda": _invocations(calls)
        * (p["lambdaRequestPerMillion"] / 1e6 + SEND_GB_SECONDS * p["lambdaGbSecondArm64"]),
        "dynamodbWrites": sum(calls.get(op, 0) for op in DYNAMODB_WRITES)
        * p["dynamodbWriteRequestUnitPerMillion"]
        / 1e6,
        "dynamodbReads": reads
        * (1.0 if heartbeat_rru is None else heartbeat_rru)
        * p["dynamodbReadRequestUnitPerMillion"]
        / 1e6,
    }


def idle_month(
    per_beat: Mapping[str, float],
    per_reconnect: Mapping[str, float],
    per_renewal: Mapping[str, float],
    heartbeat_seconds: float,
    heartbeat_rru: float,
) -> dict[str, Any]:
    beats = MONTH_MINUTES * 60 / heartbeat_seconds
    reconnects = MONTH_MINUTES / CONNECTION_LIFETIME_MINUTES
    renewals = MONTH_MINUTES / renewal_every_minutes()
    minutes = MONTH_MINUTES * IDLE_PRICES["websocketConnectionMinutePerMillion"] / 1e6
    heartbeat = {k: v * beats for k, v in _dollars(per_beat, heartbeat_rru).items()}
    reconnect = {k: v * reconnects for k, v in _dollars(per_reconnect).items()}
    renewal = {k: v * renewals for k, v in _dollars(per_renewal).items()}
    priced = {MESSAGE, *DYNAMODB_WRITES, *DYNAMODB_READS}
    unpriced = sorted(
        op
        for op in {*per_beat, *per_reconnect, *per_renewal}
        if op not in priced and not op.startswith("lambda.Invoke:")
    )
    total = minutes + sum(heartbeat.values()) + sum(reconnect.values()) + sum(renewal.values())
    return {
        "heartbeatSeconds": heartbeat_seconds,
        "heartbeatReadUnits": heartbeat_rru,
        "heartbeatsPerMonth": round(beats),
        "reconnectsPerMonth": round(reconnects),
        "renewalsPerMonth": round(renewals),
        "messagesPerMonth": round(
            beats * per_beat.get(MESSAGE, 0) + reconnects * per_reconnect.get(MESSAGE, 0)
        ),
        "invocationsPerMonth": round(
            beats * _invocations(per_beat)
            + reconnects * _invocations(per_reconnect)
            + renewals * _invocations(per_renewal)
        ),
        "dollars": {
            "connectionMinutes": round(minutes, 4),
            "heartbeats": round(sum(heartbeat.values()), 4),
            "heartbeatReads": round(heartbeat["dynamodbReads"], 5),
            "reconnects": round(sum(reconnect.values()), 4),
            "sessionRenewals": round(sum(renewal.values()), 4),
            "total": round(total, 4),
        },
        "unpriced": unpriced,  # counted calls docs/deploy.md has no price for (see docs/performance.md)
        "met": total <= IDLE_TARGET_DOLLARS,
    }


def active_room(per_beat: Mapping[str, float], heartbeat_rru: float) -> dict[str, Any]:
    """A message (sent or received) makes each listener ping after 20 s of silence for the next
    5 minutes: at most 15 pings when the room then stays silent, of which the idle heartbeat
    would have sent 2 anyway. Messages closer than 20 s apart add none."""
    per_ping = sum(_dollars(per_beat, heartbeat_rru).values())
    pings = ACTIVE_WINDOW_MS // ACTIVE_HEARTBEAT_MS
    replaced = ACTIVE_WINDOW_MS // HEARTBEAT_MS
    return {
        "heartbeatSeconds": ACTIVE_HEARTBEAT_MS / 1000,
        "windowSeconds": ACTIVE_WINDOW_MS / 1000,
        "dollarsPerHeartbeat": round(per_ping, 9),
        "pingsPerMessageAtMost": pings,
        "idlePingsReplaced": replaced,
        "dollarsPerMillionMessagesPerListener": round((pings - replaced) * per_ping * 1e6, 2),
    }


def run_idle(quick: bool = False) -> dict[str, Any]:
    beats = 5 if quick else 50
    with local_stack(replication_delay=0.05, env={"LOCALCLOUD_COUNT_AWS_CALLS": "1"}) as info:
        asyncio.run(count_idle(info, 1))  # warm-up, not reported (first imports, first probe)
        # The presence keepers beat every 15 s on their own clock: a count that holds a beat's
        # Query and PutItem is not the connection's, and is made again.
        attempts = 1
        counted = asyncio.run(count_idle(info, beats))
        while counted["keeperBeatDuringCount"] and attempts < KEEPER_ATTEMPTS:
            attempts += 1
            counted = asyncio.run(count_idle(info, beats))
    keeper = keeper_month()
    return {
        "quick": quick,
        "heartbeatsCounted": beats,
        "prices": PRICES | IDLE_PRICES | {"source": PRICES_SOURCE},
        "assumptions": {
            "monthMinutes": MONTH_MINUTES,
            "connectionLifetimeMinutes": CONNECTION_LIFETIME_MINUTES,
            "sessionRenewalEveryMinutes": renewal_every_minutes(),
            "handlerGbSecondsPerInvocation": SEND_GB_SECONDS,
            "dynamodbReads": "a function's: 1 RRU each (strongly consistent, under 4 KB); the heartbeat's "
            "Query: eventually consistent, 0.5 RRU per 4 KB of the room's newest item",
            "typicalMessage": TYPICAL_TEXT,
            "largestMessage": "4,000 characters of 4 bytes each in UTF-8",
            "httpRequests": "one per invocation of HttpApiFunction (every HTTP route integrates it)",
        },
        **counted,
        "attempts": attempts,
        # A fixed cost of each region, whatever its connections (bench/presence.py prices it):
        # not part of the connection-month.
        "keeperPerRegionMonth": keeper["dollarsPerRegionMonth"],
        "keeperPerConnectionMonthAt": {
            str(n): round(keeper["dollarsPerRegionMonth"]["total"] * len(region_names()) / n, 5)
            for n in (1_000, 10_000, 100_000)
        },
        "target": {
            "text": f"an idle connection-month at most ${IDLE_TARGET_DOLLARS}, 0 invocations per heartbeat",
            "met": _idle_met(counted),
        },
    }


def idle_table(result: dict[str, Any]) -> list[str]:
    lines = [
        "idle connection-month  heartbeat  msgs/beat  RRU/beat  invocations/beat  minutes    beats"
        "  reconnects  renewals   total"
    ]
    rows = (
        ("before", result["perHeartbeatBefore"]),
        ("now", result["perHeartbeat"]),
        ("nowLargestItem", result["perHeartbeat"]),
    )
    for name, per_beat in rows:
        month = result["month"][name]
        money = month["dollars"]
        lines.append(
            f"{name:<21} {month['heartbeatSeconds']:>8.0f} s {per_beat.get(MESSAGE, 0):>9.1f}"
            f" {month['heartbeatReadUnits'] * per_beat.get('dynamodb.Query', 0):>9.1f}"
            f" {_invocations(per_beat):>17.1f}  ${money['connectionMinutes']:.4f}  ${money['heartbeats']:.4f}"
            f"  ${money['reconnects']:.4f}   ${money['sessionRenewals']:.4f}  ${money['total']:.4f}"
        )
    active = result["activeRoom"]
    lines.append(
        f"active room: a ping after {active['heartbeatSeconds']:.0f} s of silence for"
        f" {active['windowSeconds']:.0f} s after a message: at most {active['pingsPerMessageAtMost']}"
        " pings per message per listener"
        f" (${active['dollarsPerMillionMessagesPerListener']:.2f} per million messages per listener)"
    )
    lines.append(f"target met (<= ${IDLE_TARGET_DOLLARS}, 0 invocations per heartbeat): {_idle_met(result)}")
    return lines


def _idle_met(result: dict[str, Any]) -> bool:
    return bool(result["month"]["now"]["met"]) and _invocations(result["perHeartbeat"]) == 0

"""The local stack's capacity: how many chat messages per second one region accepts and fans out,
sustained, for rooms of a few sizes. The failover drill reads the result to warn before it asks
for more (after a failover one region carries every client).

All clients connect to one region's own WebSocket URL. A few senders keep a fixed number of
messages in flight and send the next one only when an earlier one has reached every recipient, so
the figure is what the region serves end to end (accept, stream, fan-out, delivery), not how fast
it can queue work it has not done. Run on a machine shared with other work, it is a floor.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from bench.chatclients import Tracker, close_all, connect_many
from bench.common import local_stack, summary_ms
from stack_definition.template import region_names

SENDERS = 4
IN_FLIGHT = 16  # messages sent and not yet delivered everywhere, over all senders
TIMEOUT = 30.0
# `make local`'s own replication delay and stream poll interval: the stack the drill runs against.
REPLICATION_DELAY = 1.0
POLL_INTERVAL = 0.1


async def measure(region: dict[str, str], recipients: int, seconds: float) -> dict[str, Any]:
    from chat import ulid

    room = f"capacity-{uuid.uuid4().hex[:12]}"
    tracker = Tracker()
    receivers = await connect_many(region, room, recipients, tracker, watched=True, prefix="r")
    senders = receivers[: min(SENDERS, recipients)]
    latencies: list[float] = []
    delivered = 0
    deadline = 0.0

    async def keep_sending(index: int) -> None:
        nonlocal delivered
        sender = senders[index % len(senders)]
        while time.perf_counter() < deadline:
            message_id = ulid.new()
            entry = tracker.expect(message_id, recipients)
            await sender.send(message_id, f"capacity {message_id}")
            await asyncio.wait_for(entry.done.wait(), TIMEOUT)
            latencies.extend(t - entry.sent for t in entry.received)
            delivered += 1

    try:
        deadline = time.perf_counter() + 1.0  # warm-up: first calls create clients and connections
        await asyncio.gather(*(keep_sending(i) for i in range(len(senders))))
        latencies.clear()
        delivered = 0
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(keep_sending(i) for i in range(IN_FLIGHT)))
        elapsed = time.perf_counter() - started
    finally:
        await close_all(receivers)
    return {
        "recipients": recipients,
        "senders": len(senders),
        "inFlight": IN_FLIGHT,
        "seconds": round(elapsed, 2),
        "messages": delivered,
        "messagesPerSecond": round(delivered / elapsed, 1),
        "deliveriesPerSecond": round(delivered * recipients / elapsed, 1),
        "latencyMs": summary_ms(latencies),
    }


def run(quick: bool = False) -> dict[str, Any]:
    sizes = (1, 3) if quick else (1, 10, 30)
    seconds = 1.5 if quick else 10.0
    with local_stack(replication_delay=REPLICATION_DELAY, poll_interval=POLL_INTERVAL) as info:
        region = info["regions"][region_names()[0]]
        rows = [asyncio.run(measure(region, recipients, seconds)) for recipients in sizes]
    return {
        "quick": quick,
        "region": region_names()[0],
        "replicationDelaySeconds": REPLICATION_DELAY,
        "pollIntervalSeconds": POLL_INTERVAL,
        "rows": rows,  # what the drill compares its load with (drill/capacity.py)
        "target": {"text": "local capacity measured and stated (posts per second per region)", "met": True},
    }


def table(result: dict[str, Any]) -> list[str]:
    lines = [
        f"one region ({result['region']}), all clients in one room; replication delay "
        f"{result['replicationDelaySeconds']} s, stream poll {result['pollIntervalSeconds']} s",
        "recipients  in flight  messages/s  deliveries/s   p50 ms   p99 ms",
    ]
    for row in result["rows"]:
        latency = row["latencyMs"]
        lines.append(
            f"{row['recipients']:>10} {row['inFlight']:>10} {row['messagesPerSecond']:>11.1f}"
            f" {row['deliveriesPerSecond']:>13.1f} {latency['p50']:>8.1f} {latency['p99']:>8.1f}"
        )
    return lines

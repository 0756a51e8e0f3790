"""Edits and deletes: the AWS calls of each, counted as bench.cost counts a message's (botocore in
the local stack's region processes, LOCALCLOUD_COUNT_AWS_CALLS=1), one client per region in the
room, and the send-to-receive time of a new message, an edit and a delete to both (the sender's
region and the other, through the replication delay), one at a time.

Each change is counted alone: a message is posted and delivered, the counters reset, then it is
edited (counted), then deleted (counted, with the stream's tombstone and the other region's
delete on its arrival, waited for before the counters are read).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from bench.chatclients import Tracker, close_all, connect_many, state_key
from bench.common import local_stack, summary_ms
from bench.cost import POST, PRICES, region_calls, sender_region
from stack_definition.template import region_names

TIMEOUT = 15.0
WRITES = ("dynamodb.PutItem", "dynamodb.UpdateItem")
# A guest's message, edit or delete passes two rate limiters (its own and its room's guests'):
# conditional UpdateItems in the sender region's connections table, never replicated.
LIMITER_WRITES = 2
SHOWN = {*WRITES, "dynamodb.Query", "dynamodb.GetItem", POST}


async def count_changes(info: dict[str, Any], rounds: int) -> dict[str, Any]:
    regions = info["regions"]
    names = region_names()
    urls = {r: regions[r]["managementUrl"] for r in names}
    room = f"changes-{uuid.uuid4().hex[:12]}"
    tracker = Tracker()
    clients = {r: await connect_many(regions[r], room, 1, tracker, watched=True, prefix=r[:2]) for r in names}
    sender = clients[sender_region()][0]
    from chat import ulid

    calls: dict[str, list[dict[str, dict[str, int]]]] = {"message": [], "edit": [], "delete": []}
    latencies: dict[str, list[float]] = {"message": [], "edit": [], "delete": []}

    async def tombstone_handled() -> None:
        """A delete's work after its push: the tombstone written where it was accepted, and each
        other region's delete on its arrival (the regions' counts say when)."""
        async with asyncio.timeout(TIMEOUT):
            while True:
                counts = {r: await asyncio.to_thread(region_calls, urls[r]) for r in names}
                if counts[sender_region()].get("dynamodb.PutItem", 0) >= 1 and all(
                    counts[r].get("dynamodb.UpdateItem", 0) >= 1 for r in names if r != sender_region()
                ):
                    return
                await asyncio.sleep(0.1)

    async def counted(kind: str, key: str, act: Any) -> None:
        for region in names:
            await asyncio.to_thread(region_calls, urls[region], "DELETE")
        entry = tracker.expect(key, len(names))
        await act
        await asyncio.wait_for(entry.done.wait(), TIMEOUT)
        latencies[kind] += [t - entry.sent for t in entry.received]
        if kind == "delete":
            await tombstone_handled()
        await asyncio.sleep(0.3)  # let the last fan-outs return
        calls[kind].append({r: await asyncio.to_thread(region_calls, urls[r], "DELETE") for r in names})

    try:
        for i in range(rounds + 1):  # the first round warms the clients up, not reported
            message_id = ulid.new()
            await counted("message", state_key(message_id), sender.send(message_id, f"changes {i}"))
            await counted("edit", state_key(message_id, 2), sender.change(message_id, f"changed {i}"))
            await counted("delete", state_key(message_id, 3), sender.change(message_id, None))
            if i == 0:
                calls = {kind: [] for kind in calls}
                latencies = {kind: [] for kind in latencies}
    finally:
        await close_all([c for group in clients.values() for c in group])

    def mean(samples: list[dict[str, dict[str, int]]]) -> dict[str, dict[str, float]]:
        ops = {(r, op) for sample in samples for r in sample for op in sample[r]}
        totals = {r: {op: 0.0 for rr, op in ops if rr == r} for r in names}
        for sample in samples:
            for r, counts in sample.items():
                for op, n in counts.items():
                    totals[r][op] += n / len(samples)
        return {r: {op: round(n, 2) for op, n in sorted(c.items())} for r, c in totals.items()}

    per = {kind: mean(samples) for kind, samples in calls.items()}
    return {
        "rounds": rounds,
        "calls": per,
        "latencyMs": {kind: summary_ms(values) for kind, values in latencies.items()},
        "dollarsPerMillion": {kind: dollars(kind, counts) for kind, counts in per.items()},
    }


def dollars(kind: str, counts: dict[str, dict[str, float]]) -> dict[str, float]:
    """DynamoDB's share per million (write and read request units of the counted calls, items
    under 1 KB; plus the replicated writes: the item, and a delete's tombstone, once per other
    region); the WebSocket messages and Lambda are a new message's, bench.cost prices them."""
    others = len(counts) - 1
    replicated = others * (2 if kind == "delete" else 1)
    wru = sum(n for region in counts.values() for op, n in region.items() if op in WRITES) + replicated
    rru = sum(region.get("dynamodb.Query", 0.0) for region in counts.values()) * 0.5
    write = PRICES["dynamodbWriteRequestUnitPerMillion"]
    read = PRICES["dynamodbReadRequestUnitPerMillion"]
    return {
        "writeUnits": round(wru, 2),
        "readUnits": round(rru, 2),
        "dynamodb": round(wru * write + rru * read, 3),
    }


def run(quick: bool = False) -> dict[str, Any]:
    rounds = 2 if quick else 20
    with local_stack(replication_delay=0.05, env={"LOCALCLOUD_COUNT_AWS_CALLS": "1"}) as info:
        result = asyncio.run(count_changes(info, rounds))
    edit = result["calls"]["edit"][sender_region()]
    delete = result["calls"]["delete"][sender_region()]
    # The accepting region's writes on the request path: the limiters' and the change's one.
    edit_writes = edit.get("dynamodb.UpdateItem", 0) + edit.get("dynamodb.PutItem", 0) - LIMITER_WRITES
    delete_request_writes = delete.get("dynamodb.UpdateItem", 0) - LIMITER_WRITES
    return result | {
        "quick": quick,
        "measuredAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "target": {
            "text": "an edit or delete: one conditional write in the accepting region on its request "
            "path (a delete's tombstone is its stream handler's, after it); latency reported",
            "met": edit_writes == 1 and delete_request_writes == 1,
        },
    }


def table(result: dict[str, Any]) -> list[str]:
    lines = [f"{'change':<9} {'region':<12} {'calls':<50} {'p50 ms':>7} {'p99 ms':>7} {'DynamoDB $/M':>12}"]
    for kind in ("message", "edit", "delete"):
        latency, price = result["latencyMs"][kind], result["dollarsPerMillion"][kind]["dynamodb"]
        for index, region in enumerate(region_names()):
            counted = result["calls"][kind][region].items()
            calls = ", ".join(f"{op.split('.')[-1]} {n:g}" for op, n in counted if op in SHOWN)
            tail = f"{latency['p50']:>7.1f} {latency['p99']:>7.1f} {price:>12.3f}" if index == 0 else ""
            lines.append(f"{kind if index == 0 else '':<9} {region:<12} {calls:<50} {tail}")
    return lines

"""Cost: AWS calls per chat message, counted by botocore in the local stack's region processes
(LOCALCLOUD_COUNT_AWS_CALLS=1, read from GET /_local/aws-calls), for rooms of 1, 10 and 100
connections in each region; turned into dollars per million messages with AWS's published prices
(those of docs/deploy.md), next to a fan-out that scans the connections table instead of querying
the room's index (computed from the same counts: no scan-based variant is run).

Large rooms (10, 1,000 and 10,000 connections in one region): the fan-out's calls for one
message, counted through the real handlers, moto's page queue and the local queue mapping
(bench.fanout.count_calls), priced the same way per region that fans out.

Messages are sent one at a time and each is delivered before the next is sent, so every stream
batch holds one message: the worst case (a batch of k messages in a room costs one query, not k).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.request
import uuid
from typing import Any

from bench.chatclients import Tracker, close_all, connect_many
from bench.common import local_stack
from stack_definition.template import region_names

POST = "apigatewaymanagementapi.PostToConnection"
# us-east-1 on-demand prices, the ones docs/deploy.md's cost section uses (USD).
PRICES_SOURCE = "docs/deploy.md (AWS pricing pages for us-east-1, as read for that document in 2026-11)"
PRICES: dict[str, float] = {
    "websocketMessagePerMillion": 1.00,
    "lambdaRequestPerMillion": 0.20,
    "lambdaGbSecondArm64": 0.0000133334,
    "dynamodbWriteRequestUnitPerMillion": 0.625,  # replicated writes (rWRU) priced the same
    "dynamodbReadRequestUnitPerMillion": 0.125,
    "sqsRequestPerMillion": 0.40,  # standard queue; every 64 KiB of a call's payload is a request
}
SQS_CHUNK_BYTES = 64 * 1024
LAMBDA_GB = 1.769  # FanoutFunction and FanoutWorkerFunction: MemorySize 1769
# deploy.md's assumptions for compute: handlers of 256 MB for ~50 ms, fan-out of 1,769 MB for ~30 ms.
SEND_GB_SECONDS = 0.256 * 0.050
FANOUT_GB_SECONDS = 1.769 * 0.030
READ_UNIT_BYTES = 4096
SCAN_PAGE_BYTES = 1024 * 1024
BUSY_REGION_CONNECTIONS = 10_000  # a service with many rooms: what a scan has to read per batch


def sender_region() -> str:
    """Where the counted message is sent (the region holding the global table)."""
    return region_names()[0]


def item_bytes(item: dict[str, dict[str, str]]) -> int:
    """DynamoDB's item size: attribute names plus values (numbers: about 1 byte per 2 digits + 1)."""
    size = 0
    for name, value in item.items():
        kind, raw = next(iter(value.items()))
        size += len(name.encode()) + (len(raw.encode()) if kind == "S" else len(raw) // 2 + 1)
    return size


CONNECTION_ITEM = {  # a typical connections item, as ws_connect writes it
    "connectionId": {"S": "ZWEzYjI1NzgtY2E="},
    "room": {"S": "general"},
    "userId": {"S": "g_0123456789ABCDEFGHJKMNPQRS"},
    "connectedAt": {"S": "2026-11-25T00:00:00.000Z"},
    "expiresAt": {"N": "1795000000"},
}
INDEX_ENTRY = {k: CONNECTION_ITEM[k] for k in ("connectionId", "room")}  # KEYS_ONLY projection


def region_calls(management_url: str, method: str = "GET", *, scheduled: bool = False) -> dict[str, int]:
    """A region's counted AWS calls (GET /_local/aws-calls); DELETE also resets them. The calls
    of scheduled functions (`schedule.*`: the presence keeper's beats, a region's fixed cost that
    runs on its own clock) only with `scheduled`."""
    base = management_url.rsplit("/", 1)[0]  # the WebSocket port's root, not the stage
    request = urllib.request.Request(f"{base}/_local/aws-calls", method=method)  # noqa: S310 - loopback
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        calls: dict[str, int] = json.load(response)["calls"]
        return {op: n for op, n in calls.items() if scheduled or not op.startswith("schedule.")}


BACKGROUND_POLLING = ("dynamodbstreams.", "sqs.ReceiveMessage")  # the mappings' own clock


async def until_quiet(urls: list[str], *, settle: float = 0.3, within: float = 10.0) -> None:
    """Until no region's counts (but the mappings' polls) move for `settle` s (`within` at most):
    what an act set going (a connection's presence frames, the fan-outs of the last message)
    lands in its own window, never in the next one's."""
    before: list[dict[str, int]] = []
    async with asyncio.timeout(within):
        while True:
            now = [await asyncio.to_thread(region_calls, url) for url in urls]
            now = [{op: n for op, n in c.items() if not op.startswith(BACKGROUND_POLLING)} for c in now]
            if now == before:
                return
            before = now
            await asyncio.sleep(settle)


async def count_room(info: dict[str, Any], per_region: int, messages: int) -> dict[str, Any]:
    regions = info["regions"]
    urls = {r: regions[r]["managementUrl"] for r in region_names()}
    room = f"cost-{uuid.uuid4().hex[:12]}"
    tracker = Tracker()
    for region in region_names():
        await asyncio.to_thread(region_calls, urls[region], "DELETE")
    clients = {
        r: await connect_many(regions[r], room, per_region, tracker, watched=True, prefix=r[:2])
        for r in region_names()
    }
    await until_quiet(list(urls.values()))  # the newcomers' presence frames, everywhere
    connect_calls = {r: await asyncio.to_thread(region_calls, urls[r], "DELETE") for r in region_names()}
    from chat import ulid

    sender = clients[sender_region()][0]
    for i in range(messages):
        message_id = ulid.new()
        entry = tracker.expect(message_id, 2 * per_region)
        await sender.send(message_id, f"cost {i}")
        await asyncio.wait_for(entry.done.wait(), 15)
        await asyncio.sleep(0.05)
    await until_quiet(list(urls.values()))  # the last fan-outs return
    message_calls = {r: await asyncio.to_thread(region_calls, urls[r], "DELETE") for r in region_names()}
    await close_all([c for group in clients.values() for c in group])
    await until_quiet(list(urls.values()))  # the `$disconnect`s and the leaves' frames
    disconnect_calls = {r: await asyncio.to_thread(region_calls, urls[r], "DELETE") for r in region_names()}

    def per(counts: dict[str, dict[str, int]], divisor: int) -> dict[str, dict[str, float]]:
        return {r: {op: round(n / divisor, 3) for op, n in sorted(c.items())} for r, c in counts.items()}

    per_message = per(message_calls, messages)
    return {
        "connectionsPerRegion": per_region,
        "messages": messages,
        "perMessage": per_message,
        "perConnect": per(connect_calls, per_region),
        "perDisconnect": per(disconnect_calls, per_region),
        "expected": _check(per_message, per_region),
        "dollarsPerMillionMessages": dollars(per_message, per_region),
    }


def _check(per_message: dict[str, dict[str, float]], per_region: int) -> dict[str, Any]:
    def get(region: str, op: str) -> float:
        return per_message[region].get(op, 0.0)

    others = [r for r in region_names() if r != sender_region()]
    checks = {
        "oneConditionalWrite": get(sender_region(), "dynamodb.PutItem") == 1
        and all(get(r, "dynamodb.PutItem") == 0 for r in others),
        # The rate limiters (docs/architecture.md): one conditional UpdateItem on the sender's item
        # and, the bench's senders being guests, one on its room's guest budget, both in the
        # sender region's connections table, never replicated.
        "twoLimiterWrites": get(sender_region(), "dynamodb.UpdateItem") == 2
        and all(get(r, "dynamodb.UpdateItem") == 0 for r in others),
        # One connections query per region per batch; in the sender's region a guest's message may
        # also read the room's recent speakers (the look-alike check: at most one Query per
        # message, none while its 5 s cache holds).
        "oneQueryPerRegionPerBatch": 1 <= get(sender_region(), "dynamodb.Query") <= 2
        and all(get(r, "dynamodb.Query") == 1 for r in others),
        "onePostPerRecipient": all(get(r, POST) == per_region for r in region_names()),
        "noScan": all(get(r, "dynamodb.Scan") == 0 for r in region_names()),
    }
    return checks | {"met": all(checks.values())}


def _query_rru(items: int) -> float:
    """An eventually consistent Query: 0.5 RRU per 4 KB read (at least one unit)."""
    return max(1, math.ceil(items * item_bytes(INDEX_ENTRY) / READ_UNIT_BYTES)) * 0.5


def _scan_rru(items: int) -> float:
    return max(1, math.ceil(items * item_bytes(CONNECTION_ITEM) / READ_UNIT_BYTES)) * 0.5


def dollars(per_message: dict[str, dict[str, float]], per_region: int) -> dict[str, Any]:
    """$ per million messages from the counted calls (the Lambda and replication lines from the
    design: one send invocation, one fan-out invocation per connections query, one replicated
    write per replica)."""
    p = PRICES
    writes = sum(c.get("dynamodb.PutItem", 0) for c in per_message.values())
    limiter_writes = sum(c.get("dynamodb.UpdateItem", 0) for c in per_message.values())
    queries = {r: c.get("dynamodb.Query", 0) for r, c in per_message.items()}
    # A Query in the sender's region beyond its fan-out's is the guest look-alike check's.
    look_alike = max(0.0, queries.get(sender_region(), 0) - 1)
    queries[sender_region()] = queries.get(sender_region(), 0) - look_alike
    posts = sum(c.get("apigatewaymanagementapi.PostToConnection", 0) for c in per_message.values())
    fanouts = sum(queries.values())
    lines = {
        "websocketMessages": (2 + posts) * p["websocketMessagePerMillion"],  # received + ack + pushes
        "lambdaRequests": (1 + fanouts) * p["lambdaRequestPerMillion"],
        "lambdaCompute": (SEND_GB_SECONDS + fanouts * FANOUT_GB_SECONDS) * p["lambdaGbSecondArm64"] * 1e6,
        "dynamodbWrites": writes * len(region_names()) * p["dynamodbWriteRequestUnitPerMillion"],
        "dynamodbLimiterWrites": limiter_writes * p["dynamodbWriteRequestUnitPerMillion"],  # regional
        "dynamodbRoomQueries": sum(q * _query_rru(per_region) for q in queries.values())
        * p["dynamodbReadRequestUnitPerMillion"],
        # Up to 100 recent items of the room, ~340 bytes each: 0.5 RRU per 4 KB, eventually consistent.
        "dynamodbLookAlikeQueries": look_alike
        * max(1, math.ceil(100 * 340 / READ_UNIT_BYTES))
        * 0.5
        * p["dynamodbReadRequestUnitPerMillion"],
    }
    total = sum(lines.values())

    def scanning(connections_per_region: int) -> dict[str, float]:
        rru = fanouts * _scan_rru(connections_per_region)
        scan_cost = rru * p["dynamodbReadRequestUnitPerMillion"]
        return {
            "connectionsPerRegion": connections_per_region,
            "scanPagesPerBatch": math.ceil(
                connections_per_region * item_bytes(CONNECTION_ITEM) / SCAN_PAGE_BYTES
            ),
            "readUnitsPerMessage": rru,
            "total": round(total - lines["dynamodbRoomQueries"] + scan_cost, 2),
        }

    return {
        "lines": {k: round(v, 3) for k, v in lines.items()},
        "total": round(total, 2),
        "scanInstead": [scanning(per_region), scanning(BUSY_REGION_CONNECTIONS)],
    }


def large_room_dollars(row: dict[str, Any]) -> dict[str, Any]:
    """$ per million messages for one region's fan-out of one message (a batch of one) to a room,
    from the calls counted. Compute is the invocations' durations measured here (the stream handler
    and every worker, on this shared 2-core machine: an upper bound for AWS's own CPUs)."""
    p, calls = PRICES, row["calls"]
    # The local mapping's polls of an empty queue are counted too: Lambda's pollers poll whether
    # messages come or not (docs/deploy.md prices that per month), so only rooms with pages pay.
    queued = bool(row["pagesQueued"])
    sends = calls.get("SendMessageBatch", 0)
    receives = calls.get("ReceiveMessage", 0)
    chunks = math.ceil(row["pageBytes"] / SQS_CHUNK_BYTES)
    invocations = 1 + row["workerInvocations"]
    seconds = row["streamHandlerSeconds"] + row["workerSecondsTotal"]
    queries = calls.get("Query", 0)
    lines = {
        "websocketMessages": calls["PostToConnection"] * p["websocketMessagePerMillion"],
        "lambdaRequests": invocations * p["lambdaRequestPerMillion"],
        "lambdaCompute": seconds * LAMBDA_GB * p["lambdaGbSecondArm64"] * 1e6,
        "dynamodbRoomQueries": (_query_rru(row["connections"]) + 0.5 * max(0, queries - 1))
        * p["dynamodbReadRequestUnitPerMillion"],
        # Sends and receives carry the pages (billed per 64 KiB); deletes and empty polls are one each.
        "sqsRequests": (max(sends, chunks) + max(receives, chunks) + calls.get("DeleteMessageBatch", 0))
        * p["sqsRequestPerMillion"]
        if queued
        else 0.0,
    }
    return {"lines": {k: round(v, 3) for k, v in lines.items()}, "total": round(sum(lines.values()), 2)}


def large_rooms(quick: bool) -> list[dict[str, Any]]:
    from bench.fanout import count_calls

    rows = count_calls((10, 60) if quick else (10, 1000, 10_000))
    return [row | {"dollarsPerMillionMessages": large_room_dollars(row)} for row in rows]


def run(quick: bool = False) -> dict[str, Any]:
    large = large_rooms(quick)
    sizes = (1, 3) if quick else (1, 10, 100)
    messages = 2 if quick else 10
    rows = []
    with local_stack(replication_delay=0.05, env={"LOCALCLOUD_COUNT_AWS_CALLS": "1"}) as info:
        # Warm-up, not reported: the clients' first calls, and the front door's first deep health
        # probe (made at start; the next comes after the long interval local_stack sets).
        asyncio.run(count_room(info, 1, 1))
        for size in sizes:
            rows.append(asyncio.run(count_room(info, size, messages)))
            time.sleep(0.2)
    return {
        "quick": quick,
        "prices": PRICES | {"source": PRICES_SOURCE},
        "assumptions": {
            "sendGbSeconds": SEND_GB_SECONDS,
            "fanoutGbSecondsPerInvocation": FANOUT_GB_SECONDS,
            "connectionItemBytes": item_bytes(CONNECTION_ITEM),
            "indexEntryBytes": item_bytes(INDEX_ENTRY),
            "busyRegionConnections": BUSY_REGION_CONNECTIONS,
            "scanVariant": "computed from the counts (same calls, a Scan of the whole table per batch "
            "per region instead of the room query); not run",
            "getRecords": "dynamodbstreams.GetRecords is the event source mapping's polling: it depends "
            "on time, not on messages, and Lambda does not bill it",
        },
        "rows": rows,
        "largeRooms": large,
        "target": {
            "text": "one conditional write, per region one connections query per stream batch, "
            "one post per recipient",
            "met": all(r["expected"]["met"] for r in rows),
        },
    }


def table(result: dict[str, Any]) -> list[str]:
    lines = [
        "conns/region  region      PutItem  UpdateItem  Query  Posts  GetRecords  $/M msgs"
        "  (scan: this room / 10k conns)"
    ]
    for row in result["rows"]:
        money = row["dollarsPerMillionMessages"]
        for region, calls in row["perMessage"].items():
            lines.append(
                f"{row['connectionsPerRegion']:>12}  {region:<10} {calls.get('dynamodb.PutItem', 0):>8.2f}"
                f" {calls.get('dynamodb.UpdateItem', 0):>11.2f} {calls.get('dynamodb.Query', 0):>6.2f}"
                f" {calls.get(POST, 0):>6.1f}"
                f" {calls.get('dynamodbstreams.GetRecords', 0):>11.1f}"
                + (
                    f"  {money['total']:>8.2f}  ({money['scanInstead'][0]['total']:.2f}"
                    f" / {money['scanInstead'][1]['total']:.2f})"
                    if region == sender_region()
                    else ""
                )
            )
    lines.append(f"expected counts met: {result['target']['met']}")
    lines.append("large rooms, one region:  conns  queries  SendMessageBatch  invocations  posts  $/M msgs")
    for row in result["largeRooms"]:
        calls = row["calls"]
        lines.append(
            f"{'':>25}{row['connections']:>6} {calls.get('Query', 0):>8}"
            f" {calls.get('SendMessageBatch', 0):>17}"
            f" {1 + row['workerInvocations']:>12} {calls['PostToConnection']:>6}"
            f" {row['dollarsPerMillionMessages']['total']:>9.2f}"
        )
    return lines

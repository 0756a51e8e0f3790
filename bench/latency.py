"""Message latency on the local stack: send to receive over real WebSockets, for 1, 10 and 50
clients in one room, in the sender's region and across regions (sender in the measured region, by
default the template's first, receivers in the next one, through the replication delay); p50/p90/p99
and messages per second. Then every ordered pair of the stack's regions, 10 receivers each (with
three regions, six pairs): a third region is measured both ways with each of the others.

The floor is the same AWS calls made directly with boto3 against the same moto server (tables of
the same definition, in two regions the stack does not use, so its pollers ignore them): the
conditional PutItem, GetRecords until the record is in the stream, (across regions: the configured
replication delay, the replica's PutItem and its GetRecords), the room-index Query, and one
PostToConnection per recipient, 64 at a time, to a management-API double that answers at once.
What the floor leaves out is what we add: API Gateway's event shapes, the Lambda emulation,
Powertools, the stream poller's hand-off, and the WebSocket hops to and from the clients.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.chatclients import ChatClient, Tracker, close_all, connect_many, state_key
from bench.common import CHOSEN, local_stack, slow_endpoint, summary_ms
from stack_definition.template import load_cached

REPLICATION_DELAY = 0.05
POLL_INTERVAL = 0.05
TIMEOUT = 15.0
FLOOR_REGIONS = ("us-west-2", "eu-west-1")
TARGET = {"clients": 50, "p50": 25.0, "p99": 150.0}


async def measure(
    info: dict[str, Any], clients: int, pair: tuple[str, str], messages: int, burst: int
) -> dict[str, Any]:
    """Senders in pair[0], receivers in pair[1] (the same region: no replication on the way)."""
    source, target = (info["regions"][region] for region in pair)
    cross = pair[0] != pair[1]
    room = f"bench-{uuid.uuid4().hex[:12]}"
    tracker = Tracker()
    senders_count = min(5, clients)
    if cross:
        senders = await connect_many(source, room, senders_count, tracker, watched=False, prefix="s")
        receivers = await connect_many(target, room, clients, tracker, watched=True, prefix="r")
    else:
        receivers = await connect_many(source, room, clients, tracker, watched=True, prefix="c")
        senders = receivers[:senders_count]
    everyone = list({id(c): c for c in senders + receivers}.values())
    try:
        from chat import ulid

        async def one(sender: ChatClient, text: str, ids: list[str] | None = None) -> Any:
            message_id = ulid.new()
            if ids is not None:
                ids.append(message_id)
            entry = tracker.expect(message_id, clients)
            await sender.send(message_id, text)
            return entry

        for i in range(3):  # warm-up: first calls create boto3 clients and connections
            entry = await one(senders[0], f"warm-up {i}")
            await asyncio.wait_for(entry.done.wait(), TIMEOUT)
        latencies: list[float] = []
        acks: list[float] = []
        changes: dict[str, list[float]] = {"edit": [], "delete": []}
        for i in range(messages):
            sent: list[str] = []
            entry = await one(senders[0], f"latency {i}", sent)
            await asyncio.wait_for(entry.done.wait(), TIMEOUT)
            latencies += [t - entry.sent for t in entry.received]
            if entry.acked is not None:
                acks.append(entry.acked - entry.sent)
            await asyncio.sleep(0.01)
            # Then an edit and a delete of it, timed the same way, so each kind meets the same load.
            await time_changes(senders[0], tracker, sent[0], clients, changes)
        # Throughput: `burst` messages sent back to back by up to 5 senders at once.
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        entries = await asyncio.gather(*(one(senders[i % senders_count], f"burst {i}") for i in range(burst)))
        await asyncio.wait_for(asyncio.gather(*(e.done.wait() for e in entries)), TIMEOUT * 4)
        elapsed = max(max(e.received) for e in entries) - started
        burst_latencies = [t - e.sent for e in entries for t in e.received]
    finally:
        await close_all(everyone)
    return {
        "clients": clients,
        "cross": cross,
        "from": pair[0],
        "to": pair[1],
        "messages": messages,
        "latencyMs": summary_ms(latencies),
        "ackMs": summary_ms(acks) if acks else None,
        "changesMs": {kind: summary_ms(values) for kind, values in changes.items()},
        "burst": {
            "messages": burst,
            "senders": senders_count,
            "seconds": round(elapsed, 3),
            "messagesPerSecond": round(burst / elapsed, 1),
            "deliveriesPerSecond": round(burst * clients / elapsed, 1),
            "latencyMs": summary_ms(burst_latencies),
        },
    }


async def time_changes(
    sender: ChatClient, tracker: Tracker, message_id: str, clients: int, latencies: dict[str, list[float]]
) -> None:
    """Send to receive of an edit, then a delete, of the sender's message `message_id`: a change
    reaches the room as a message frame with its new state."""
    for kind, version, text in (("edit", 2, f"edited {message_id}"), ("delete", 3, None)):
        entry = tracker.expect(state_key(message_id, version), clients)
        await sender.change(message_id, text)
        await asyncio.wait_for(entry.done.wait(), TIMEOUT)
        latencies[kind] += [t - entry.sent for t in entry.received]
        await asyncio.sleep(0.01)


def floor(aws_endpoint: str, management_url: str, clients: int, cross: bool, messages: int) -> dict[str, Any]:
    """The same AWS calls, made directly: what no implementation on this moto server can beat."""
    import boto3
    from botocore.config import Config

    from chat import ulid
    from chat.fanout import message_frame
    from chat.model import Message, iso_time
    from chat.store import ROOM_INDEX, connection_item, message_to_item
    from localcloud.aws import provision
    from localcloud.dynamodb.streams import ShardReader

    tables = {r: provision.create_tables(load_cached(), aws_endpoint, r) for r in FLOOR_REGIONS}
    dynamodb = {r: provision.client("dynamodb", aws_endpoint, r) for r in FLOOR_REGIONS}
    readers = {
        r: ShardReader(
            provision.client("dynamodbstreams", aws_endpoint, r),
            tables[r]["stream"],
            starting_position="LATEST",
            checkpoint=None,
        )
        for r in FLOOR_REGIONS
    }
    source = FLOOR_REGIONS[0]
    target = FLOOR_REGIONS[1] if cross else source
    room = f"floor-{uuid.uuid4().hex[:12]}"
    for first in range(0, clients, 25):
        dynamodb[target].batch_write_item(
            RequestItems={
                tables[target]["connections"]: [
                    {
                        "PutRequest": {
                            "Item": connection_item(
                                f"floor{i:04d}{room}=",
                                room=room,
                                user_id=f"r{i}",
                                connected_at="2026-01-01T00:00:00.000Z",
                                expires_at=4_000_000_000,
                            )
                        }
                    }
                    for i in range(first, min(clients, first + 25))
                ]
            }
        )
    management = boto3.client(
        "apigatewaymanagementapi",
        region_name=target,
        endpoint_url=management_url,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the double ignores them
        config=Config(retries={"mode": "standard", "max_attempts": 4}, max_pool_connections=64),
    )

    def read_until(region: str, message_id: str) -> dict[str, Any]:
        while True:
            for record in readers[region].read(100):
                image = record["dynamodb"].get("NewImage") or {}
                if image.get("id", {}).get("S") == message_id:
                    return dict(image)

    def post(connection_id: str, data: bytes) -> float:
        management.post_to_connection(ConnectionId=connection_id, Data=data)
        return time.perf_counter()

    latencies: list[float] = []
    with ThreadPoolExecutor(max_workers=64) as pool:
        for i in range(messages + 3):
            message_id = ulid.new()
            message = Message(
                id=message_id,
                room=room,
                author="floor",
                authorId="g_floor",
                text=f"floor {i}",
                sentAt=iso_time(ulid.timestamp_ms(message_id)),
                acceptedRegion=source,
                transport="websocket",
            )
            started = time.perf_counter()
            dynamodb[source].put_item(
                TableName=tables[source]["messages"],
                Item=message_to_item(message, 4_000_000_000),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            image = read_until(source, message_id)
            if cross:
                time.sleep(REPLICATION_DELAY)
                dynamodb[target].put_item(TableName=tables[target]["messages"], Item=image)
                read_until(target, message_id)
            query: dict[str, Any] = {
                "TableName": tables[target]["connections"],
                "IndexName": ROOM_INDEX,
                "KeyConditionExpression": "room = :room",
                "ExpressionAttributeValues": {":room": {"S": room}},
            }
            ids: list[str] = []
            while True:
                page = dynamodb[target].query(**query)
                ids += [item["connectionId"]["S"] for item in page["Items"]]
                if "LastEvaluatedKey" not in page:
                    break
                query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            frame = message_frame(message, target)
            done = list(pool.map(post, ids, [frame] * len(ids)))
            if i >= 3:  # the first three warm the clients up, as in the stack's run
                latencies += [t - started for t in done]
            time.sleep(0.01)
    return {"clients": clients, "cross": cross, "messages": messages, "latencyMs": summary_ms(latencies)}


def run(quick: bool = False) -> dict[str, Any]:
    sizes = (1, 3) if quick else (1, 10, 50)
    messages = 5 if quick else 60
    burst = 5 if quick else 60
    rows: list[dict[str, Any]] = []
    regions, source = CHOSEN.stack(), CHOSEN.region()
    replica = regions[(regions.index(source) + 1) % len(regions)]
    with (
        local_stack(
            replication_delay=REPLICATION_DELAY, poll_interval=POLL_INTERVAL, regions=regions
        ) as info,
        slow_endpoint(0.0) as management_url,
    ):
        for cross in (False, True):
            for clients in sizes:
                ours = asyncio.run(
                    measure(info, clients, (source, replica if cross else source), messages, burst)
                )
                base = floor(info["awsEndpointUrl"], management_url, clients, cross, messages)
                ours["floorMs"] = base["latencyMs"]
                ours["ratioToFloor"] = {
                    q: round(ours["latencyMs"][q] / base["latencyMs"][q], 2) for q in ("p50", "p90", "p99")
                }
                rows.append(ours)
        pairs = [
            asyncio.run(measure(info, sizes[1], (sender, receiver), messages, burst))
            for sender in regions
            for receiver in regions
            if sender != receiver
        ]
        startup = info["benchStartupSeconds"]
    same = next((r for r in rows if not r["cross"] and r["clients"] == TARGET["clients"]), None)
    target: dict[str, Any] = {
        "text": "same region, 50 clients: p50 under 25 ms, p99 under 150 ms",
        "measured": same is not None,
    }
    if same is not None:
        target |= {
            "p50": same["latencyMs"]["p50"],
            "p99": same["latencyMs"]["p99"],
            "met": same["latencyMs"]["p50"] < TARGET["p50"] and same["latencyMs"]["p99"] < TARGET["p99"],
        }
    return {
        "quick": quick,
        "regions": {"sender": source, "crossReceivers": replica, "stack": list(regions)},
        "replicationDelaySeconds": REPLICATION_DELAY,
        "pollIntervalSeconds": POLL_INTERVAL,
        "stackStartupSeconds": startup,
        "rows": rows,
        "pairs": pairs,  # every ordered pair of regions, sizes[1] receivers
        "target": target,
    }


def table(result: dict[str, Any]) -> list[str]:
    lines = [
        f"replication delay {result['replicationDelaySeconds']} s,"
        f" stream poll {result['pollIntervalSeconds']} s",
        "path    clients   p50 ms   p90 ms   p99 ms  floor p50/p99   ratio p50/p99   msg/s",
    ]
    for row in result["rows"]:
        lat, base, ratio = row["latencyMs"], row["floorMs"], row["ratioToFloor"]
        lines.append(
            f"{'cross' if row['cross'] else 'same':<7} {row['clients']:>7}"
            f" {lat['p50']:>8.1f} {lat['p90']:>8.1f} {lat['p99']:>8.1f}"
            f"  {base['p50']:>6.1f}/{base['p99']:<7.1f} {ratio['p50']:>6.2f}/{ratio['p99']:<7.2f}"
            f" {row['burst']['messagesPerSecond']:>6.1f}"
        )
    if result.get("pairs"):
        lines.append("pair (sender -> receivers)            clients   p50 ms   p90 ms   p99 ms   msg/s")
    for pair in result.get("pairs", []):
        lat = pair["latencyMs"]
        lines.append(
            f"{pair['from'] + ' -> ' + pair['to']:<36} {pair['clients']:>7} {lat['p50']:>8.1f}"
            f" {lat['p90']:>8.1f} {lat['p99']:>8.1f} {pair['burst']['messagesPerSecond']:>7.1f}"
        )
    return lines

"""Fan-out: one stream batch pushed to 10, 100 and 1,000 connections of a room, each post taking
20 ms (as AWS's @connections API roughly does), at our concurrency (64) and at 1 (a loop of
posts, what the reference demos do).

Two layers are measured:
- `domain`: chat.fanout.fan_out with an in-memory connection store and a Pusher that sleeps 20 ms:
  the concurrency design alone.
- `handler`: the real Lambda handler (chat.handlers.fanout.handler) with boto3: the room's
  connections in a moto server, posts signed by chat.push to a management-API double (its own
  process) that answers after 20 ms. This one includes the real pusher's CPU cost per post.
Both count the connections queries, which must be one per room per batch.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from bench.common import FUNCTIONS, REGIONS, TEMPLATE, slow_endpoint

if str(FUNCTIONS) not in sys.path:
    sys.path.insert(0, str(FUNCTIONS))

POST_SECONDS = 0.020
REGION = REGIONS[0]  # the fan-out of one region
ROOM = "bench-fanout"


def _record(sequence: int, room: str, item_of: Callable[..., dict[str, Any]], message: Any) -> dict[str, Any]:
    return {
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "awsRegion": REGION,
        "dynamodb": {"SequenceNumber": str(sequence), "NewImage": item_of(message, 2_000_000_000)},
    }


def make_batch(messages: int, rooms: Sequence[str] = (ROOM,)) -> dict[str, Any]:
    """A DynamoDB stream event of `messages` new messages spread over `rooms`, as Lambda sends it."""
    from chat import ulid
    from chat.model import Message, iso_time
    from chat.store import message_to_item

    records = []
    for index in range(messages):
        message_id = ulid.new()
        room = rooms[index % len(rooms)]
        message = Message(
            id=message_id,
            room=room,
            author="bench",
            authorId="g_bench",
            text=f"message {index}",
            sentAt=iso_time(ulid.timestamp_ms(message_id)),
            acceptedRegion=REGION,
            transport="websocket",
        )
        records.append(_record(index + 1, room, message_to_item, message))
    return {"Records": records}


class CountingStore:
    """The ConnectionStore port in memory, counting the connections queries."""

    def __init__(self, rooms: dict[str, list[str]]) -> None:
        self.rooms = rooms
        self.queries = 0

    def put_connection(
        self, connection_id: str, *, room: str, user_id: str, connected_at: str, expires_at: int
    ) -> None:
        self.rooms.setdefault(room, []).append(connection_id)

    def count_connections(self, user_id: str) -> int:
        return 0

    def delete_connection(self, connection_id: str) -> None:
        pass

    def connections_in_room(self, room: str) -> Sequence[str]:
        self.queries += 1
        return list(self.rooms.get(room, []))

    def probe(self, region: str, now: int) -> None:
        pass


class SleepingPusher:
    """Every post takes POST_SECONDS, like a call to API Gateway's @connections API."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.posts = 0
        self._lock = threading.Lock()

    def push(self, connection_id: str, data: bytes) -> Any:
        from chat.ports import Delivery

        time.sleep(self.seconds)
        with self._lock:
            self.posts += 1
        return Delivery.DELIVERED


def run_domain(sizes: Sequence[int], concurrencies: Sequence[int], repeats: int) -> list[dict[str, Any]]:
    from chat.fanout import fan_out
    from chat.handlers.fanout import parse_records

    rows = []
    for size in sizes:
        for concurrency in concurrencies:
            times, queries, posts = [], [], []
            # A loop of 20 ms posts is slow and steady: once is enough past 100 connections.
            for _ in range(1 if concurrency == 1 and size > 100 else repeats):
                store = CountingStore({ROOM: [f"conn-{i}" for i in range(size)], "other": ["x"]})
                pusher = SleepingPusher(POST_SECONDS)
                records = parse_records(make_batch(1))
                started = time.perf_counter()
                result = fan_out(
                    records, connections=store, pusher=pusher, region=REGION, concurrency=concurrency
                )
                times.append(time.perf_counter() - started)
                queries.append(store.queries)
                posts.append(pusher.posts)
                assert result.delivered == size, result
            rows.append(_row("domain", size, concurrency, times, queries, posts))
    return rows


def _row(
    layer: str, size: int, concurrency: int, times: list[float], queries: list[int], posts: list[int]
) -> dict[str, Any]:
    return {
        "layer": layer,
        "connections": size,
        "concurrency": concurrency,
        "repeats": len(times),
        "seconds": round(statistics.median(times), 4),
        "secondsAll": [round(t, 4) for t in times],
        "connectionsQueries": max(queries),
        "posts": max(posts),
        "idealSeconds": round(-(-size // concurrency) * POST_SECONDS, 4),
    }


def _query_batches(batch: dict[str, Any]) -> int:
    return len({r["dynamodb"]["NewImage"]["room"]["S"] for r in batch["Records"]})


def run_handler(sizes: Sequence[int], concurrencies: Sequence[int], repeats: int) -> list[dict[str, Any]]:
    """The real handler through boto3: moto for the connections, a 20 ms management-API double."""
    import boto3
    from moto.server import ThreadedMotoServer

    from chat import clients
    from localcloud import provision
    from localcloud.events import LambdaContext
    from localcloud.runtime import region_environment

    calls: Counter[str] = Counter()
    calls_lock = threading.Lock()

    def count(model: Any, **_: Any) -> None:
        with calls_lock:
            calls[model.name] += 1

    from chat.push import ManagementApiPusher

    real_push = ManagementApiPusher.push

    def counted_push(self: ManagementApiPusher, connection_id: str, data: bytes) -> Any:
        # The pusher signs and sends its posts itself (not through boto3): count them here.
        with calls_lock:
            calls["PostToConnection"] += 1
        return real_push(self, connection_id, data)

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto: one line per call
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    saved_env = dict(os.environ)
    rows = []
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        tables = provision.create_tables(TEMPLATE, endpoint, REGION)
        dynamodb = provision.client("dynamodb", endpoint, REGION)
        with slow_endpoint(POST_SECONDS) as management_url:
            os.environ.update(
                region_environment(
                    TEMPLATE,
                    REGION,
                    refs={"ConnectionsTable": tables["connections"]},
                    aws_endpoint=endpoint,
                    local_urls={"WebSocketApi": management_url.removesuffix("/prod")},
                )
            )
            os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
            os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
            boto3.setup_default_session()
            assert boto3.DEFAULT_SESSION is not None
            boto3.DEFAULT_SESSION.events.register("before-call", count)
            ManagementApiPusher.push = counted_push  # type: ignore[method-assign]
            from chat.handlers import fanout as fanout_handler

            loaded = 0
            for size in sizes:
                _fill_room(dynamodb, tables["connections"], ROOM, loaded, size)
                loaded = size
                for concurrency in concurrencies:
                    os.environ["FANOUT_CONCURRENCY"] = str(concurrency)
                    clients.reset()  # new settings, and a management client pooled for them
                    fanout_handler.handler(make_batch(1), LambdaContext("bench", REGION, 512, 60))  # warm
                    times, queries, posts = [], [], []
                    for _ in range(1 if concurrency == 1 and size > 100 else repeats):
                        batch = make_batch(1)
                        calls.clear()
                        context = LambdaContext("bench-fanout", REGION, 512, 60)
                        started = time.perf_counter()
                        with contextlib.redirect_stdout(io.StringIO()):
                            response = fanout_handler.handler(batch, context)
                        times.append(time.perf_counter() - started)
                        assert response == {"batchItemFailures": []}, response
                        queries.append(calls["Query"])
                        posts.append(calls["PostToConnection"])
                        assert calls["Query"] == _query_batches(batch)
                    rows.append(_row("handler", size, concurrency, times, queries, posts))
    finally:
        ManagementApiPusher.push = real_push  # type: ignore[method-assign]
        os.environ.clear()
        os.environ.update(saved_env)
        clients.reset()
        boto3.DEFAULT_SESSION = None
        server.stop()
    return rows


def _fill_room(dynamodb: Any, table: str, room: str, start: int, end: int) -> None:
    from chat.store import connection_item

    items = [
        {
            "PutRequest": {
                "Item": connection_item(
                    f"conn{i:05d}=",
                    room=room,
                    user_id=f"user{i}",
                    connected_at="2026-01-01T00:00:00.000Z",
                    expires_at=4_000_000_000,
                )
            }
        }
        for i in range(start, end)
    ]
    for first in range(0, len(items), 25):
        dynamodb.batch_write_item(RequestItems={table: items[first : first + 25]})


def run(quick: bool = False) -> dict[str, Any]:
    from chat.observability import logger

    level = logger.log_level
    logger.setLevel("WARNING")  # one INFO line per invocation would drown the summary
    try:
        return _run(quick)
    finally:
        logger.setLevel(level)


def _run(quick: bool) -> dict[str, Any]:
    sizes = (10, 50) if quick else (10, 100, 1000)
    concurrencies = (64, 1)
    repeats = 1 if quick else 3
    domain = run_domain(sizes, concurrencies, repeats)
    # A batch of 6 messages in 2 rooms: still one connections query per room.
    from chat.fanout import fan_out
    from chat.handlers.fanout import parse_records

    store = CountingStore({ROOM: ["a", "b"], "second-room": ["c"]})
    fan_out(
        parse_records(make_batch(6, (ROOM, "second-room"))),
        connections=store,
        pusher=SleepingPusher(0.0),
        region=REGION,
        concurrency=64,
    )
    handler = run_handler(sizes, concurrencies, repeats)
    biggest = max(sizes)
    target = next(r for r in handler if r["connections"] == biggest and r["concurrency"] == 64)
    design = next(r for r in domain if r["connections"] == biggest and r["concurrency"] == 64)
    return {
        "postSeconds": POST_SECONDS,
        "quick": quick,
        "rows": domain + handler,
        "multiRoomBatch": {"messages": 6, "rooms": 2, "connectionsQueries": store.queries},
        "target": {
            "text": "one invocation pushes to 1,000 connections in under 1 s (20 ms per post)",
            "connections": biggest,
            "seconds": target["seconds"],  # the real handler, boto3 posts
            "domainSeconds": design["seconds"],  # the concurrency design alone
            "met": biggest == 1000 and target["seconds"] < 1.0,
            "measured": biggest == 1000,
        },
    }


def table(result: dict[str, Any]) -> list[str]:
    lines = ["layer    conns  conc  median s  ideal s  queries  posts"]
    for row in result["rows"]:
        lines.append(
            f"{row['layer']:<8} {row['connections']:>5} {row['concurrency']:>5} {row['seconds']:>9.3f}"
            f" {row['idealSeconds']:>8.2f} {row['connectionsQueries']:>8} {row['posts']:>6}"
        )
    multi = result["multiRoomBatch"]
    lines.append(
        f"batch of {multi['messages']} messages in {multi['rooms']} rooms: "
        f"{multi['connectionsQueries']} connections queries"
    )
    return lines

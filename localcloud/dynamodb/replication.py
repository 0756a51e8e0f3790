"""Global-table replication between the regions' message tables, as DynamoDB global tables
(version 2019.11.21) behave: asynchronous, through each table's stream, after a delay, and
last writer wins when the same item is written in two regions before either write arrives.

Each region's stream is read from the start; a write this replicator made is recognised in the
target's stream (its echo) and not sent back. Replication is idempotent per item version: a record
whose image the region already holds (read twice, or a put that changed nothing, for which
DynamoDB writes no stream record) is not a new write, and a version the target already holds is
not written again. Replication can be paused and resumed, to play a region whose replication
falls minutes behind. A region whose DynamoDB fails (the stack's `fail dynamodb`) is neither read
nor written: what it should receive waits, in order, with its stamps, and what it holds waits in
its stream; both travel after `heal`, last writer wins as ever.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from localcloud import processes
from localcloud.aws import provision
from localcloud.dynamodb.streams import ShardReader

log = logging.getLogger("replication")

Key = tuple[tuple[str, str], ...]
Stamp = tuple[float, str]  # (write time, region): the later stamp wins; the region breaks ties


@dataclass(order=True)
class _Pending:
    due: float
    order: int
    target: str = field(compare=False)
    key: Key = field(compare=False)
    image: dict[str, Any] | None = field(compare=False)  # None: the item was deleted
    stamp: Stamp = field(compare=False)


def _key(record: dict[str, Any]) -> Key:
    return tuple(
        sorted(
            (name, json.dumps(value, sort_keys=True)) for name, value in record["dynamodb"]["Keys"].items()
        )
    )


def _signature(image: dict[str, Any] | None) -> str:
    return json.dumps(image, sort_keys=True)


class Replicator:
    def __init__(
        self,
        *,
        tables: dict[str, Any],
        readers: dict[str, ShardReader],
        table_name: str,
        delay: float,
        interval: float = 0.05,
    ) -> None:
        self.tables = tables  # region -> DynamoDB client
        self.readers = readers  # region -> reader of that region's messages stream
        self.table_name = table_name
        self.delay = delay
        self.interval = interval
        self.paused = False
        self.failing: set[str] = set()  # regions whose DynamoDB fails: nothing in or out
        self.replicated = 0
        self.lag_seconds: dict[str, float] = {region: 0.0 for region in tables}
        self._queue: list[_Pending] = []
        self._order = itertools.count()
        self._versions: dict[tuple[str, Key], Stamp] = {}
        self._echoes: dict[tuple[str, Key], list[str]] = {}
        self._held: dict[tuple[str, Key], str] = {}  # the image each region holds, as far as we know
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="replication", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def status(self) -> dict[str, Any]:
        return {
            "delaySeconds": self.delay,
            "paused": self.paused,
            "failingRegions": sorted(self.failing),
            "pending": len(self._queue),
            "replicated": self.replicated,
            "lagSeconds": dict(self.lag_seconds),
        }

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:
                log.exception("replication step failed; retrying")
            self._stop.wait(self.interval)

    def step(self, now: float | None = None) -> None:
        for region, reader in self.readers.items():
            if region in self.failing:
                continue  # its stream cannot be read: its writes wait there
            records = reader.read(1000)
            for record in records:
                self._observe(region, record, now)
            if records:
                reader.commit(records[-1]["dynamodb"]["SequenceNumber"])
        if not self.paused:
            self._apply_due(time.time() if now is None else now)

    def _observe(self, region: str, record: dict[str, Any], now: float | None) -> None:
        key = _key(record)
        image = record["dynamodb"].get("NewImage") if record["eventName"] != "REMOVE" else None
        signature = _signature(image)
        echoes = self._echoes.get((region, key))
        if echoes and signature in echoes:
            echoes.remove(signature)  # our own replicated write arriving in its stream
            return
        if self._held.get((region, key)) == signature:
            return  # not a new write: a record read again, or a put that changed nothing
        self._held[(region, key)] = signature
        created = record["dynamodb"].get("ApproximateCreationDateTime")
        written = created.timestamp() if hasattr(created, "timestamp") else time.time()
        stamp: Stamp = (written, region)
        self._versions[(region, key)] = max(stamp, self._versions.get((region, key), stamp))
        due = (time.time() if now is None else now) + self.delay
        for target in self.tables:
            if target != region:
                heapq.heappush(self._queue, _Pending(due, next(self._order), target, key, image, stamp))

    def _apply_due(self, now: float) -> None:
        waiting: list[_Pending] = []  # for a failing region: kept, in their order
        try:
            while self._queue and self._queue[0].due <= now:
                pending = heapq.heappop(self._queue)
                if pending.target in self.failing:
                    waiting.append(pending)
                    continue
                try:
                    self._apply(pending, now)
                except Exception:
                    waiting.append(pending)  # not applied: tried again at the next step
                    raise
        finally:
            for pending in waiting:
                heapq.heappush(self._queue, pending)

    def _apply(self, pending: _Pending, now: float) -> None:
        current = self._versions.get((pending.target, pending.key))
        if current is None or current <= pending.stamp:  # else the target's later write wins
            signature = _signature(pending.image)
            if self._held.get((pending.target, pending.key)) == signature:
                self._versions[(pending.target, pending.key)] = pending.stamp
                return  # it holds this version already: writing it again would change nothing
            client = self.tables[pending.target]
            if pending.image is None:
                client.delete_item(
                    TableName=self.table_name, Key={name: json.loads(value) for name, value in pending.key}
                )
            else:
                client.put_item(TableName=self.table_name, Item=pending.image)
            self._versions[(pending.target, pending.key)] = pending.stamp
            self._held[(pending.target, pending.key)] = signature
            self._echoes.setdefault((pending.target, pending.key), []).append(signature)
            self.replicated += 1
            self.lag_seconds[pending.target] = max(0.0, now - pending.stamp[0])


# ---------------------------------------------------------------------- its own process
# Replication runs beside the regions, not inside any of them (as in AWS), and in its own
# process so that a busy front door or gateway never slows it down.


def _build(endpoint: str, table: str, regions: list[str], delay: float) -> Replicator:
    clients = {r: provision.client("dynamodb", endpoint, r) for r in regions}
    readers = {
        r: ShardReader(
            provision.client("dynamodbstreams", endpoint, r),
            clients[r].describe_table(TableName=table)["Table"]["LatestStreamArn"],
            starting_position="TRIM_HORIZON",
            checkpoint=None,
        )
        for r in regions
    }
    return Replicator(tables=clients, readers=readers, table_name=table, delay=delay)


def main(argv: list[str] | None = None) -> None:
    parser = processes.child_arguments("Global-table replication for the local stack.")
    parser.add_argument("--aws-endpoint", required=True)
    parser.add_argument("--table", required=True)
    parser.add_argument("--regions", nargs="+", required=True)
    parser.add_argument("--delay", type=float, default=1.0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout, format="%(asctime)s replication %(levelname)s %(message)s"
    )
    replicator = _build(args.aws_endpoint, args.table, args.regions, args.delay)
    replicator.start()

    async def status(_: web.Request) -> web.Response:
        return web.json_response(replicator.status())

    async def control(request: web.Request) -> web.Response:
        body = await request.json()
        if "paused" in body:
            replicator.paused = bool(body["paused"])
        if "delaySeconds" in body:
            replicator.delay = float(body["delaySeconds"])
        if "failingRegions" in body:
            replicator.failing = set(body["failingRegions"]) & set(replicator.tables)
        log.info("control %s", json.dumps(body))
        return web.json_response(replicator.status())

    async def serve() -> None:
        app = web.Application()
        app.router.add_get("/status", status)
        app.router.add_post("/control", control)
        sock = processes.bind(args.host, 0)
        await processes.serve(app, sock)
        processes.announce_ready(args.ready_fd, {"port": sock.getsockname()[1]})
        await processes.parent_gone()
        replicator.stop()

    asyncio.run(serve())


if __name__ == "__main__":
    main()

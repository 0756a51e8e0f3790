"""The AWS API endpoint on loopback: a moto server holding both regions' DynamoDB tables and
streams and the Route 53 configuration. Run by the supervisor in its own process."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
from typing import Any

from localcloud import processes

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")


def atomic_dynamodb_writes() -> None:
    """DynamoDB applies each write, its condition included, atomically; moto's threaded server
    interleaves concurrent requests' condition checks and writes. One lock around moto's writes
    makes a conditional write here as atomic as in AWS (the connection cap relies on it)."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()  # a transaction's writes call the others
    for name in _WRITES:
        original = getattr(DynamoDBBackend, name)
        if getattr(original, "atomic", False):
            continue

        def locked(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return _original(self, *args, **kwargs)

        wrapper: Any = functools.wraps(original)(locked)
        wrapper.atomic = True
        setattr(DynamoDBBackend, name, wrapper)


def main(argv: list[str] | None = None) -> None:
    parser = processes.child_arguments(__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    # moto's server answers every origin's CORS preflight by default, so any page the developer
    # opens could read and write the local tables. moto reads this once, at import.
    os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"
    from moto.server import ThreadedMotoServer

    atomic_dynamodb_writes()
    _number_stream_records_uniquely()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per AWS call is too many
    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    print(f"AWS endpoint (moto) on http://{host}:{port}", flush=True)
    processes.announce_ready(args.ready_fd, {"port": port})
    asyncio.run(processes.parent_gone())
    server.stop()


def _number_stream_records_uniquely() -> None:
    """moto numbers a table's stream records `len(records) + start` without a lock: two writes to
    one table at the same moment (a handler's and replication's, say) can get the same sequence
    number, which DynamoDB Streams never gives, and a reader after that number then reads the
    second record again on every poll. One write's record at a time, as in a shard."""
    from moto.dynamodb.models.table import StreamShard

    add, lock = StreamShard.add, threading.Lock()

    def add_alone(shard: StreamShard, old: Any, new: Any) -> None:
        with lock:
            add(shard, old, new)

    setattr(StreamShard, "add", add_alone)  # noqa: B010 - patching moto's class, not an attribute of ours


if __name__ == "__main__":
    main()

"""The AWS API endpoint on loopback: a moto server holding both regions' DynamoDB tables and
streams and the Route 53 configuration. Run by the supervisor in its own process."""

from __future__ import annotations

import asyncio
import calendar
import functools
import json
import logging
import os
import threading
from datetime import datetime
from typing import Any

from localcloud import processes

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")


def prepare_moto() -> None:
    """moto as the local stack runs it (and the integration tests, so they test the same thing):
    writes as atomic as DynamoDB's, stream records numbered as a shard numbers them, and the hot
    paths fast enough for two regions' traffic on one laptop core. Call before serving."""
    _atomic_dynamodb_writes()
    _number_stream_records_uniquely()
    _route_each_host_once()
    _answer_items_as_plain_json()


def _atomic_dynamodb_writes() -> None:
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

    prepare_moto()

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


def _route_each_host_once() -> None:
    """moto's server finds the service of every request by trying each of its services' URL
    patterns in turn (and listing its own package folder), all under one lock: a third of its time
    under the local stack's load, every request of every region waiting in line. The answer for a
    host never changes, so it is worked out once per host."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    find = DomainDispatcherApplication.get_backend_for_host
    found: dict[str | None, Any] = {}

    def find_once(dispatcher: DomainDispatcherApplication, host: str | None) -> Any:
        if host not in found:
            found[host] = find(dispatcher, host)
        return found[host]

    setattr(DomainDispatcherApplication, "get_backend_for_host", find_once)  # noqa: B010 - as above


# The operations whose answers carry items (or stream records) and nothing else: their results
# are already in DynamoDB's JSON wire shape, which moto then walks member by member against the
# service's model (about 1.4 ms per item: a 100-message page took 180 ms, and under the drill's
# load moto spent most of its time there while replication waited behind it).
_PLAIN_JSON = {
    ("dynamodb", operation)
    for operation in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem")
} | {("dynamodb", "BatchWriteItem"), ("dynamodbstreams", "GetRecords")}


class _NotPlain(Exception):
    """A value the model's serializer must handle: an absent member, bytes, a binary attribute."""


def _plain(value: Any) -> Any:
    """`value` as its JSON body, as moto's serializer writes it: timestamps as epoch seconds
    truncated to milliseconds. Raises _NotPlain for anything the serializer would change."""
    if isinstance(value, dict):
        if "B" in value or "BS" in value:  # binary attributes: the serializer base64-encodes them
            raise _NotPlain
        return {key: _plain(member) for key, member in value.items()}
    if isinstance(value, list):
        return [_plain(member) for member in value]
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, datetime):
        return calendar.timegm(value.timetuple()) + (value.microsecond // 1000) / 1000.0
    raise _NotPlain  # None (the serializer leaves the member out), bytes, anything else


def _answer_items_as_plain_json() -> None:
    """Answer the item operations with their result as JSON, falling back to moto's serializer
    for anything it would write differently (tests/localcloud/test_moto_answers.py compares)."""
    from moto.core.responses import ActionResult

    serialize = ActionResult.execute_result
    if getattr(serialize, "plain", False):
        return

    def execute_result(result: ActionResult, context: Any) -> Any:
        service = context.service_model
        if (service.service_name, context.operation_model.name) in _PLAIN_JSON and isinstance(
            result.result, dict
        ):
            try:
                body = json.dumps(_plain(result.result), separators=(",", ":"))
            except _NotPlain:
                return serialize(result, context)
            content_type = f"application/x-amz-json-{service.metadata.get('jsonVersion', '1.0')}"
            return 200, {"Content-Type": content_type}, body
        return serialize(result, context)

    execute_result.plain = True  # type: ignore[attr-defined]
    execute_result.moto = serialize  # type: ignore[attr-defined]  # moto's own, for the tests' comparison
    setattr(ActionResult, "execute_result", execute_result)  # noqa: B010 - patching moto's class


if __name__ == "__main__":
    main()

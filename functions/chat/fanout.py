"""Stream fan-out: push every new message, local or replicated, to this region's connections.

One connections query per room per batch; posts run concurrently across connections and in
order per connection; a 410 removes the connection; any other failed post is logged and never
stops the rest. A record fails (and is retried by the event source mapping) only when its room's
connections could not be read.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from chat.model import Message
from chat.ports import ConnectionStore, Delivery, Pusher, StoreError


@dataclass(frozen=True)
class StreamRecord:
    """A new message as the stream delivered it (the handler decodes the stream's images)."""

    sequence_number: str
    message: Message


@dataclass
class FanoutResult:
    failed: list[str] = field(default_factory=list)  # sequence numbers to report to Lambda
    messages: int = 0
    delivered: int = 0
    gone: int = 0
    failed_posts: int = 0
    # Errors as values: the handler logs them, so the domain needs no logger (and no SDK).
    unreadable_rooms: list[tuple[str, str]] = field(default_factory=list)  # (room, error)
    kept_gone: list[tuple[str, str]] = field(default_factory=list)  # (connection id, error)


def message_frame(message: Message, region: str) -> bytes:
    return json.dumps(
        {"type": "message", "message": message.to_json(), "deliveredBy": region},
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


def fan_out(
    records: Sequence[StreamRecord],
    *,
    connections: ConnectionStore,
    pusher: Pusher,
    region: str,
    concurrency: int,
) -> FanoutResult:
    result = FanoutResult()
    by_room: dict[str, list[tuple[str, Message]]] = defaultdict(list)
    for record in records:
        by_room[record.message.room].append((record.sequence_number, record.message))

    # Per connection, the frames it must get, in stream order.
    outbox: dict[str, list[bytes]] = defaultdict(list)
    for room, entries in by_room.items():
        try:
            recipients = connections.connections_in_room(room)
        except StoreError as error:
            result.unreadable_rooms.append((room, str(error)))
            result.failed.extend(sequence for sequence, _ in entries)
            continue
        result.messages += len(entries)
        frames = [message_frame(message, region) for _, message in entries]
        for connection_id in recipients:
            outbox[connection_id].extend(frames)

    def deliver(connection_id: str, frames: list[bytes]) -> tuple[int, int, bool]:
        """Post a connection its frames in order: (delivered, failed, gone)."""
        delivered = failed = 0
        for frame in frames:
            outcome = pusher.push(connection_id, frame)
            if outcome is Delivery.GONE:
                return delivered, failed, True
            if outcome is Delivery.DELIVERED:
                delivered += 1
            else:
                failed += 1
        return delivered, failed, False

    if outbox:
        with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(outbox)))) as pool:
            outcomes = list(zip(outbox, pool.map(deliver, outbox, outbox.values()), strict=True))
        for connection_id, (delivered, failed, gone) in outcomes:
            result.delivered += delivered
            result.failed_posts += failed
            if gone:
                result.gone += 1
                try:
                    connections.delete_connection(connection_id)
                except StoreError as error:
                    # The item's TTL removes it later; the next batch gets another 410 and retries.
                    result.kept_gone.append((connection_id, str(error)))
    return result

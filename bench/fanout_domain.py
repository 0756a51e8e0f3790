"""The fan-out benchmark's domain layer: chat.fanout.fan_out with an in-memory connection store
and a Pusher that sleeps 20 ms per post (the concurrency design alone: rooms of one page, posted
inline), and the stream batches every layer is given (bench/fanout.py runs them)."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from stack_definition.template import region_names

if TYPE_CHECKING:
    from chat.ports import SlotChange
    from chat.presence import Member

POST_SECONDS = 0.020
PAGE_POSTS = 1000  # the template's FANOUT_PAGE_POSTS
ROOM = "bench-fanout"


def fanout_region() -> str:
    """The fan-out of one region is measured: the first."""
    return region_names()[0]


def _record(sequence: int, room: str, item_of: Callable[..., dict[str, Any]], message: Any) -> dict[str, Any]:
    return {
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "awsRegion": fanout_region(),
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
            authorId="g_BENCH",
            text=f"message {index}",
            sentAt=iso_time(ulid.timestamp_ms(message_id)),
            acceptedRegion=fanout_region(),
            transport="websocket",
        )
        records.append(_record(index + 1, room, message_to_item, message))
    return {"Records": records}


def new_messages(batch: dict[str, Any]) -> list[Any]:
    """The fan-out's stream records of a batch of new messages, as the stream handler reads them."""
    from chat.change_stream import MessageWrite
    from chat.fanout import StreamRecord
    from chat.stream_images import parse_records

    writes = parse_records(batch)
    return [StreamRecord(w.sequence_number, w.new) for w in writes if isinstance(w, MessageWrite)]


class CountingStore:
    """The fan-out's part of the ConnectionStore port in memory, counting the connections queries."""

    def __init__(self, rooms: dict[str, list[str]]) -> None:
        self.rooms = rooms
        self.queries = 0

    def put_connection(
        self, connection_id: str, *, room: str, user_id: str, connected_at: str, expires_at: int
    ) -> None:
        self.rooms.setdefault(room, []).append(connection_id)

    def claim_slot(
        self, user_id: str, connection_id: str, *, room: str, expires_at: int, cap: int, now: int
    ) -> SlotChange | None:
        from chat.ports import SlotChange

        return SlotChange(others_in_room=False, seq=1)

    def release_slot(self, user_id: str, connection_id: str, *, room: str | None, expires_at: int) -> None:
        pass

    def enter_room(self, member: Member) -> None:
        pass

    def user_connections(self, user_id: str) -> tuple[list[tuple[str, str | None, int]], int | None]:
        return [], None

    def leave_room_if_empty(self, room: str, user_id: str, *, seq: int) -> None:
        pass

    def delete_connection(self, connection_id: str, *, connected_before: str | None = None) -> None:
        pass

    def connections_page(
        self, room: str, *, after: str | None, limit: int
    ) -> tuple[Sequence[str], str | None]:
        self.queries += 1
        ids = self.rooms.get(room, [])
        start = 0 if after is None else ids.index(after) + 1
        page = ids[start : start + limit]
        return page, (page[-1] if start + limit < len(ids) else None)

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


class UnusedQueue:
    """Rooms of at most one page are posted inline: the domain layer never queues a page."""

    def send_pages(self, pages: Sequence[Any]) -> None:
        raise AssertionError("a room of at most one page was queued")


def run_domain(sizes: Sequence[int], concurrencies: Sequence[int], repeats: int) -> list[dict[str, Any]]:
    from chat.fanout import fan_out

    rows = []
    for size in sizes:
        for concurrency in concurrencies:
            times, queries, posts = [], [], []
            # A loop of 20 ms posts is slow and steady: once is enough past 100 connections.
            for _ in range(1 if concurrency == 1 and size > 100 else repeats):
                store = CountingStore({ROOM: [f"conn-{i}" for i in range(size)], "other": ["x"]})
                pusher = SleepingPusher(POST_SECONDS)
                records = new_messages(make_batch(1))
                started = time.perf_counter()
                result = fan_out(
                    records,
                    connections=store,
                    pusher=pusher,
                    pages=UnusedQueue(),
                    region=fanout_region(),
                    concurrency=concurrency,
                    page_posts=PAGE_POSTS,
                )
                times.append(time.perf_counter() - started)
                queries.append(store.queries)
                posts.append(pusher.posts)
                assert result.delivered == size, result
            rows.append(summary_row("domain", size, concurrency, times, queries, posts))
    return rows


def summary_row(
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

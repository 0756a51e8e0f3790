"""Fan-out: push every new message, local or replicated, to this region's connections, with the
work of any one invocation bounded whatever the room's size.

The stream handler groups its batch by room and reads each room's connections a page at a time.
A room whose first page is all of it, and whose posts fit what is left of the invocation's inline
budget (one page's worth, `page_posts`), is posted at once: a small room keeps its one hop. Every
other room is cut into pages of at most `page_posts` posts (connections times frames) and handed to
the workers through a queue, so a huge room costs the stream handler a few reads and sends, never
its posts, and other rooms on the shard wait for at most one page of posts.

Posting: concurrently across connections, in order per connection; a 410 removes the connection;
any other failed post (after the pusher's retries) is logged, never stops the rest, and goes to
the page queue in a page holding only the connections and frames that failed. A stream record
fails (and is retried by the event source mapping) only when its room's connections could not be
read or its pages not queued. A page fails alone: the queue retries a page on which every post
failed until it redrives it to the DLQ.

Time: both take `time_left`, the seconds left to start a post (the handler's remaining time less
a margin that covers the posts in flight and the hand-back). Once it is up no post starts, the
posts in flight finish, and what was not posted goes to the page queue as pages holding only
those connections and frames; the invocation then succeeds. Reporting it failed instead (or
running past the timeout) would have it retried whole, posting again to everyone it reached.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from chat.errors import StoreError
from chat.fanout_pages import Page, frame_bytes, plan_pages
from chat.model import Message
from chat.ports import ConnectionStore, PageQueue, Pusher
from chat.posting import TimeLeft, by_frames, deliver, settle, unbounded

# After a large room's first page, its connections are read this many at a time: one Query
# returns up to 1 MB (~25,000 keys-only entries), and fewer round trips queue the pages sooner.
READ_CONNECTIONS = 10_000

# A post answered 410 means the connection is gone, or not yet there: `$connect` writes the
# connection's item before API Gateway holds the socket, and API Gateway answers 410 to a post to
# a connection still in its `$connect`. Forgetting such a young connection would leave its client
# connected but forgotten (nothing pushed to it until its heartbeat notices). No `$connect` lasts
# longer than API Gateway's integration timeout (29 s), so a 410 forgets only older connections;
# a younger gone one is forgotten by its `$disconnect`, a later post or its TTL.
CONNECT_GRACE_SECONDS = 30


@dataclass(frozen=True)
class StreamRecord:
    """A new message as the stream delivered it (the handler decodes the stream's images)."""

    sequence_number: str
    message: Message


@dataclass(frozen=True)
class RoomFrame:
    """A frame for a room's connections that is not a message: presence and typing
    (chat/presence.py). `skip` is a connection not to post it to (the one that entered, the
    typist's own socket), inline or in a large room's pages."""

    sequence_number: str
    room: str
    frame: bytes
    skip: str | None = None


@dataclass(frozen=True)
class LargeRoom:
    """A room whose posts do not fit the invocation's inline budget: its pages go to the workers,
    starting with the connections already read (`first`) and reading on from `cursor`."""

    room: str
    sequences: list[str]  # its stream records, failed together if its pages cannot be queued
    first: Sequence[str]
    cursor: str | None
    entries: list[RoomFrame]  # its frames in stream order, each with the connection it skips

    def pages(self, ids: Sequence[str], page_posts: int, concurrency: int) -> list[Page]:
        """The pages for these of its connections: every frame to each, except that a connection
        a frame skips (the one that entered, the socket that typed) gets pages of its own."""
        skipped = {entry.skip for entry in self.entries if entry.skip in ids}
        everyone = [c for c in ids if c not in skipped]
        planned = plan_pages(everyone, [entry.frame for entry in self.entries], page_posts, concurrency)
        for connection_id in sorted(c for c in skipped if c is not None):
            own = [entry.frame for entry in self.entries if entry.skip != connection_id]
            planned += plan_pages([connection_id], own, page_posts, concurrency) if own else []
        return planned


@dataclass
class FanoutResult:
    failed: list[str] = field(default_factory=list)  # sequence numbers to report to Lambda
    messages: int = 0
    delivered: int = 0
    gone: int = 0
    failed_posts: int = 0
    pages_queued: int = 0
    handed_back: int = 0  # connections whose posts failed or were late, queued as pages
    late: int = 0  # of those, connections whose time to post ran out before all their frames
    # Errors as values: the handler logs them, so the domain needs no logger (and no SDK).
    unreadable_rooms: list[tuple[str, str]] = field(default_factory=list)  # (room, error)
    kept_gone: list[tuple[str, str]] = field(default_factory=list)  # (connection id, error)


@dataclass
class PageResult:
    delivered: int = 0
    gone: int = 0
    failed_posts: int = 0
    handed_back: int = 0  # connections whose posts failed or were late, queued again as pages
    late: int = 0  # of those, connections whose time to post ran out before all their frames
    retry: bool = False  # report the page as failed: the queue delivers it again, then to the DLQ
    requeue_error: str | None = None
    kept_gone: list[tuple[str, str]] = field(default_factory=list)


def message_frame(message: Message, region: str) -> bytes:
    return frame_bytes({"type": "message", "message": message.to_json(), "deliveredBy": region})


def fan_out(
    records: Sequence[StreamRecord | RoomFrame],
    *,
    connections: ConnectionStore,
    pusher: Pusher,
    pages: PageQueue,
    region: str,
    concurrency: int,
    page_posts: int,
    time_left: TimeLeft = unbounded,
    connected_before: str | None = None,
) -> FanoutResult:
    result = FanoutResult()
    by_room: dict[str, list[RoomFrame]] = defaultdict(list)
    messages_in: dict[str, int] = defaultdict(int)
    for record in records:
        if isinstance(record, StreamRecord):
            messages_in[record.message.room] += 1
            frame = message_frame(record.message, region)
            by_room[record.message.room].append(RoomFrame(record.sequence_number, record.message.room, frame))
        else:
            by_room[record.room].append(record)

    outbox: dict[str, list[bytes]] = defaultdict(list)  # per connection, its frames in stream order
    room_of: dict[str, str] = {}
    inline_budget = page_posts
    large: list[LargeRoom] = []
    for room, entries in by_room.items():
        sequences = [entry.sequence_number for entry in entries]
        frames = [entry.frame for entry in entries]
        try:
            # One more than a page tells whether the room is one page: DynamoDB returns a cursor
            # whenever a page reaches its limit, even when nothing follows.
            first, cursor = connections.connections_page(room, after=None, limit=page_posts + 1)
        except StoreError as error:
            result.unreadable_rooms.append((room, str(error)))
            result.failed.extend(sequences)
            continue
        result.messages += messages_in[room]
        if cursor is None and len(first) * len(frames) <= inline_budget:
            inline_budget -= len(first) * len(frames)
            for connection_id in first:
                outbox[connection_id].extend(e.frame for e in entries if e.skip != connection_id)
                room_of[connection_id] = room
        else:
            if len(first) > page_posts:
                first, cursor = first[:page_posts], first[page_posts - 1]
            large.append(LargeRoom(room, sequences, first, cursor, entries))

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(outbox)))) as pool:
        # The small rooms' posts start now; the large rooms are paged and queued meanwhile.
        inline = pool.map(lambda c: deliver(pusher, c, outbox[c], time_left), list(outbox))
        for paged in large:
            try:
                result.pages_queued += _queue_room(
                    paged,
                    connections=connections,
                    pages=pages,
                    page_posts=page_posts,
                    concurrency=concurrency,
                )
            except StoreError as error:
                result.unreadable_rooms.append((paged.room, str(error)))
                result.failed.extend(paged.sequences)
        posted = settle(inline, list(outbox), connections, connected_before=connected_before)
    result.delivered, result.failed_posts, result.gone = posted.delivered, posted.failed_posts, posted.gone
    result.kept_gone = posted.kept_gone
    # Connections whose posts failed, or that the time to post ran out on, get the frames they
    # did not get through the workers, and the batch succeeds: failing it would post it again
    # to everyone posted here.
    groups = by_frames(posted.leftovers(outbox.__getitem__))
    handed = [
        page for frames, ids in groups.items() for page in plan_pages(ids, frames, page_posts, concurrency)
    ]
    if handed:
        try:
            pages.send_pages(handed)
        except StoreError as error:
            # Nothing may be dropped: those rooms' records fail, and the stream retries them.
            for room in dict.fromkeys(room_of[c] for ids in groups.values() for c in ids):
                result.unreadable_rooms.append((room, str(error)))
                result.failed.extend(entry.sequence_number for entry in by_room[room])
        else:
            result.pages_queued += len(handed)
            result.handed_back = sum(len(ids) for ids in groups.values())
            result.late = len(posted.late)
    return result


def _queue_room(
    room: LargeRoom,
    *,
    connections: ConnectionStore,
    pages: PageQueue,
    page_posts: int,
    concurrency: int,
) -> int:
    """Queue a room's pages as its connections are read, so workers start on the first page while
    the rest is read. Returns the number of pages queued."""
    queued = 0
    ids, cursor = room.first, room.cursor
    while True:
        planned = room.pages(ids, page_posts, concurrency)
        pages.send_pages(planned)
        queued += len(planned)
        if cursor is None:
            return queued
        ids, cursor = connections.connections_page(room.room, after=cursor, limit=READ_CONNECTIONS)


def post_page(
    page: Page,
    *,
    connections: ConnectionStore,
    pusher: Pusher,
    pages: PageQueue,
    concurrency: int,
    time_left: TimeLeft = unbounded,
    connected_before: str | None = None,
) -> PageResult:
    """A worker's page. What was not posted (posts that failed after the pusher's own retries,
    and posts the time ran out on) goes back to the queue as smaller pages holding only those
    connections and frames, so a retry never posts again what went through. A page on which
    nothing went through (and no connection was gone) but posts failed is reported failed and
    left to the queue's redrive; one that only ran out of time is handed back."""
    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(page.connections)))) as pool:
        posted = settle(
            pool.map(lambda c: deliver(pusher, c, page.frames, time_left), page.connections),
            page.connections,
            connections,
            connected_before=connected_before,
        )
    result = PageResult(
        delivered=posted.delivered,
        gone=posted.gone,
        failed_posts=posted.failed_posts,
        kept_gone=posted.kept_gone,
    )
    leftovers = posted.leftovers(lambda _: page.frames)
    handed = [Page(tuple(ids), frames) for frames, ids in by_frames(leftovers).items()]
    if not handed:
        return result
    if posted.failed_posts and not posted.delivered and not posted.gone:
        result.retry = True  # nothing went through: the API may be unreachable
        return result
    try:
        pages.send_pages(handed)
    except StoreError as error:
        result.retry, result.requeue_error = True, str(error)
    else:
        result.handed_back = sum(len(p.connections) for p in handed)
        result.late = len(posted.late)
    return result

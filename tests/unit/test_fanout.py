"""Fan-out with fakes: small rooms posted inline with one query per room per batch, large rooms
cut into bounded pages for the workers, 410s removed, failures isolated to their page, and an
invocation whose time runs out handing back only what it did not post (a fake clock, no sleeps)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat import ulid
from chat.change_stream import MessageWrite
from chat.fanout import CONNECT_GRACE_SECONDS, FanoutResult, RoomFrame, StreamRecord, fan_out, post_page
from chat.fanout_pages import MAX_PAGE_BYTES, Page, plan_pages
from chat.fanout_service import FanoutService
from chat.model import Message, iso_time
from chat.ports import Delivery
from chat.settings import Settings
from chat.store import message_to_item
from chat.stream_images import in_stream_order, parse_records
from chat.validation import MAX_TEXT_CHARS
from tests.unit.fakes import FakeConnectionStore, FakePageQueue, FakePusher

NOW = 1_790_000_000_000


def message(seq: int, room: str) -> Message:
    return Message(
        id=ulid.new(NOW + seq),
        room=room,
        author="a",
        authorId="g_A",
        text=f"m{seq}",
        sentAt="t",
        acceptedRegion="eu-west-2",
        transport="http",
    )


def record(seq: int, room: str) -> StreamRecord:
    return StreamRecord(str(seq), message(seq, room))


def stream_record(seq: int, event: str, image: dict[str, Any] | None) -> dict[str, Any]:
    """A record as DynamoDB Streams hands it to the function."""
    dynamodb: dict[str, Any] = {"SequenceNumber": str(seq)}
    if image is not None:
        dynamodb["NewImage"] = image
    return {"eventName": event, "dynamodb": dynamodb}


def run(
    records: Sequence[StreamRecord | RoomFrame],
    connections: FakeConnectionStore,
    pusher: FakePusher,
    pages: FakePageQueue | None = None,
    page_posts: int = 1000,
) -> FanoutResult:
    return fan_out(
        records,
        connections=connections,
        pusher=pusher,
        pages=FakePageQueue() if pages is None else pages,
        region="us-east-1",
        concurrency=8,
        page_posts=page_posts,
    )


def test_every_connection_in_the_room_gets_every_message_in_order() -> None:
    connections = FakeConnectionStore({"r": ["c1", "c2"], "other": ["c3"]})
    pusher = FakePusher()
    result = run([record(1, "r"), record(2, "r")], connections, pusher)
    for connection in ("c1", "c2"):
        frames = [json.loads(data) for cid, data in pusher.posts if cid == connection]
        assert [f["message"]["text"] for f in frames] == ["m1", "m2"]
        assert all(f["type"] == "message" and f["deliveredBy"] == "us-east-1" for f in frames)
        assert frames[0]["message"]["acceptedRegion"] == "eu-west-2"
    assert result.delivered == 4
    assert result.failed == []


def test_one_connections_query_per_room_per_batch() -> None:
    connections = FakeConnectionStore({"a": ["c1"], "b": ["c2"]})
    run([record(1, "a"), record(2, "b"), record(3, "a"), record(4, "b")], connections, FakePusher())
    assert sorted(connections.queries) == ["a", "b"]


def test_inserts_and_modifies_of_messages_are_writes_to_judge_and_the_rest_is_skipped() -> None:
    new = message(4, "r")
    image = message_to_item(new, 0)
    event = {
        "Records": [
            stream_record(1, "MODIFY", image),
            stream_record(2, "REMOVE", None),
            stream_record(3, "INSERT", None),
            stream_record(4, "INSERT", image),
        ]
    }
    assert parse_records(event) == [MessageWrite("1", None, new, 0), MessageWrite("4", None, new, 0)]


def test_gone_connections_are_removed_and_the_rest_still_delivered() -> None:
    ids = [f"c{i}" for i in range(40)]
    gone = {"c3", "c17", "c39"}
    connections = FakeConnectionStore({"r": ids})
    pusher, pages = FakePusher(gone=gone, failing={"c5"}), FakePageQueue()
    result = run([record(1, "r"), record(2, "r")], connections, pusher, pages)
    assert sorted(connections.deleted) == sorted(gone)
    assert result.gone == 3
    assert result.failed_posts == 2  # c5 failed both frames, and that blocked nothing
    assert result.delivered == 2 * (40 - 3 - 1)
    assert result.failed == []
    assert [page.connections for page in pages.sent] == [("c5",)]  # the workers try it again


def test_a_room_whose_connections_cannot_be_read_fails_only_its_records() -> None:
    connections = FakeConnectionStore({"ok": ["c1"], "bad": ["c2"]})
    connections.unreadable.add("bad")
    pusher = FakePusher()
    result = run([record(1, "ok"), record(2, "bad"), record(3, "ok")], connections, pusher)
    assert result.failed == ["2"]
    assert [room for room, _ in result.unreadable_rooms] == ["bad"]
    assert [cid for cid, _ in pusher.posts] == ["c1", "c1"]


def test_a_malformed_image_is_skipped_not_retried_forever() -> None:
    good = message(2, "r")
    event = {
        "Records": [
            stream_record(1, "INSERT", {"pk": {"S": "room#r"}}),
            stream_record(2, "INSERT", message_to_item(good, 0)),
        ]
    }
    assert parse_records(event) == [MessageWrite("2", None, good, 0)]


# ---- large rooms: bounded pages, handed to the workers -----------------------------------------


def frames_of(pusher_posts: list[tuple[str, bytes]], connection: str) -> list[str]:
    return [json.loads(data)["message"]["text"] for cid, data in pusher_posts if cid == connection]


def test_a_room_larger_than_a_page_goes_to_the_workers_in_pages_of_bounded_posts() -> None:
    ids = [f"c{i}" for i in range(25)]
    connections = FakeConnectionStore({"big": ids, "small": ["s1", "s2"]})
    pusher, pages = FakePusher(), FakePageQueue()
    result = run(
        [record(1, "big"), record(2, "small"), record(3, "big")], connections, pusher, pages, page_posts=10
    )
    # The small room is posted inline; nothing of the big room is.
    assert {cid for cid, _ in pusher.posts} == {"s1", "s2"}
    assert all(page.posts <= 10 for page in pages.sent)
    for connection in ids:  # in the order the pages were sent: every frame once, in stream order
        frames = [f for page in pages.sent if connection in page.connections for f in page.frames]
        assert [json.loads(f)["message"]["text"] for f in frames] == ["m1", "m3"]
    # 25 connections x 2 frames, 10 posts a page and (at concurrency 8) one frame a page.
    assert result.pages_queued == len(pages.sent) == 6
    assert result.failed == []


def test_a_batchs_messages_and_presence_frames_go_out_in_the_order_of_its_records() -> None:
    # given a batch whose records are a typing write, then the typist's message, then an enter
    event = {"Records": [stream_record(n, "INSERT", None) for n in (105, 230, 1000)]}
    typed = RoomFrame("105", "r", b'{"type":"typing"}')
    entered = RoomFrame("1000", "r", b'{"type":"presence"}')
    said = record(230, "r")
    # when the message part and the presence part are put together
    ordered = in_stream_order(event, [said], [typed, entered])
    # then the typing frame goes first, as it was written first
    assert ordered == [typed, said, entered]


def test_a_frame_that_skips_a_connection_skips_it_in_a_paged_room_too() -> None:
    """docs/api.md: the connection that entered gets no `enter`, the socket that typed no `typing`,
    however large the room or the batch."""
    ids = [f"c{i}" for i in range(25)]
    connections = FakeConnectionStore({"big": ids})
    pusher, pages = FakePusher(), FakePageQueue()
    entered = RoomFrame("2", "big", b'{"type":"presence","event":"enter"}', skip="c7")
    typed = RoomFrame("3", "big", b'{"type":"typing"}', skip="c9")
    run([record(1, "big"), entered, typed, record(4, "big")], connections, pusher, pages, page_posts=10)
    assert pusher.posts == []  # over the inline budget: all of it paged
    assert all(page.posts <= 10 for page in pages.sent)

    def shown(connection: str) -> list[str]:
        frames = [json.loads(f) for page in pages.sent if connection in page.connections for f in page.frames]
        return [f["message"]["text"] if "message" in f else f["type"] for f in frames]

    assert shown("c7") == ["m1", "typing", "m4"]
    assert shown("c9") == ["m1", "presence", "m4"]
    assert {c: shown(c) for c in ids if c not in ("c7", "c9")} == {
        c: ["m1", "presence", "typing", "m4"] for c in ids if c not in ("c7", "c9")
    }


def test_the_inline_budget_is_one_page_of_posts_per_invocation() -> None:
    rooms = {f"r{n}": [f"r{n}-c{i}" for i in range(4)] for n in range(3)}
    connections = FakeConnectionStore(rooms)
    pusher, pages = FakePusher(), FakePageQueue()
    run([record(n, f"r{n}") for n in range(3)], connections, pusher, pages, page_posts=10)
    # 4 posts per room: two rooms fit the invocation's 10 posts, the third is queued as a page.
    assert len(pusher.posts) == 8
    assert [page.connections for page in pages.sent] == [tuple(rooms["r2"])]


def test_a_room_whose_pages_cannot_be_queued_fails_only_its_records() -> None:
    connections = FakeConnectionStore({"big": [f"c{i}" for i in range(30)], "small": ["s1"]})
    pages = FakePageQueue()
    pages.fail = True
    pusher = FakePusher()
    result = run([record(1, "big"), record(2, "small")], connections, pusher, pages, page_posts=10)
    assert result.failed == ["1"]
    assert [cid for cid, _ in pusher.posts] == ["s1"]


def big_message(seq: int, text_size: int) -> Message:
    return Message(
        id=ulid.new(NOW + seq),
        room="r",
        author="a" * 40,
        authorId="g_" + "A" * 22,
        text="\U0001f600" * text_size,  # 4 bytes in UTF-8: the largest frame a text makes
        sentAt="2026-01-01T00:00:00.000Z",
        acceptedRegion="eu-west-2",
        transport="websocket",
    )


@given(
    connections=st.integers(min_value=0, max_value=1_200),
    sizes=st.lists(st.sampled_from([1, 100, MAX_TEXT_CHARS]), min_size=1, max_size=100),
    page_posts=st.sampled_from([7, 100, 1000]),
    concurrency=st.sampled_from([1, 8, 64]),
)
def test_pages_post_every_frame_to_every_connection_once_in_order_within_the_bounds(
    connections: int, sizes: list[int], page_posts: int, concurrency: int
) -> None:
    from chat.fanout import message_frame

    ids = [f"{i:012d}ABCD=" for i in range(connections)]  # API Gateway's ids are 16 characters
    frames = [message_frame(big_message(n, size), "us-east-1") for n, size in enumerate(sizes)]
    pages = plan_pages(ids, frames, page_posts, concurrency)
    posted: dict[str, list[bytes]] = {}
    for page in pages:
        assert page.posts <= page_posts
        assert len(page.frames) <= max(1, page_posts // concurrency)
        assert len(page.encode().encode()) <= MAX_PAGE_BYTES
        for connection_id in page.connections:
            posted.setdefault(connection_id, []).extend(page.frames)
    # Pages in the order sent give each connection every frame once, in stream order.
    assert posted == {connection_id: frames for connection_id in ids}


def test_a_page_survives_the_queue_unchanged() -> None:
    from chat.fanout import message_frame

    page = Page(
        ("a=", "b="), (message_frame(big_message(1, 3), "eu-west-2"), message_frame(message(2, "r"), "x"))
    )
    assert Page.decode(page.encode()) == page


@pytest.mark.parametrize(
    "body",
    [
        "",
        "[]",
        '{"connections": ["a"]}',
        '{"connections": [], "frames": [{}]}',
        '{"connections": [1], "frames": [{}]}',
        "[" * 100_000,
    ],
)
def test_a_body_that_is_not_a_page_is_refused(body: str) -> None:
    with pytest.raises(ValueError, match="not a page"):
        Page.decode(body)


def test_a_page_retry_goes_only_to_the_connections_whose_posts_failed() -> None:
    frames = (b'{"n":1}', b'{"n":2}')
    page = Page(("ok1", "bad", "gone", "ok2"), frames)
    pusher, pages, connections = (
        FakePusher(gone={"gone"}, failing={"bad"}),
        FakePageQueue(),
        FakeConnectionStore(),
    )
    result = post_page(page, connections=connections, pusher=pusher, pages=pages, concurrency=4)
    assert pages.sent == [Page(("bad",), frames)]  # the smaller page: no re-post to ok1 or ok2
    assert result.retry is False
    assert result.handed_back == 1
    assert result.delivered == 4
    assert result.gone == 1
    assert connections.deleted == ["gone"]

    # The queue delivers the smaller page to a worker; this time its post goes through.
    pusher = FakePusher()
    result = post_page(
        pages.sent[0], connections=connections, pusher=pusher, pages=FakePageQueue(), concurrency=4
    )
    assert [cid for cid, _ in pusher.posts] == ["bad", "bad"]
    assert result.retry is False
    assert result.delivered == 2


def test_a_page_that_failed_everywhere_is_left_to_the_queue_to_deliver_again() -> None:
    page = Page(("a", "b"), (b"{}",))
    pages = FakePageQueue()
    result = post_page(
        page,
        connections=FakeConnectionStore(),
        pusher=FakePusher(failing={"a", "b"}),
        pages=pages,
        concurrency=2,
    )
    assert result.retry is True
    assert pages.sent == []


def test_a_page_whose_failed_connections_cannot_be_queued_is_retried_whole() -> None:
    pages = FakePageQueue()
    pages.fail = True
    result = post_page(
        Page(("a", "b"), (b"{}",)),
        connections=FakeConnectionStore(),
        pusher=FakePusher(failing={"a"}),
        pages=pages,
        concurrency=2,
    )
    assert result.retry is True
    assert result.requeue_error is not None


def test_a_room_of_exactly_one_page_is_posted_inline() -> None:
    # DynamoDB returns a cursor when a page reaches its limit even if nothing follows.
    ids = [f"c{i}" for i in range(10)]
    pusher, pages = FakePusher(), FakePageQueue()
    run([record(1, "r")], FakeConnectionStore({"r": ids}), pusher, pages, page_posts=10)
    assert sorted(cid for cid, _ in pusher.posts) == sorted(ids)
    assert pages.sent == []


def test_a_page_takes_about_posts_over_concurrency_rounds_even_with_many_frames() -> None:
    # Frames go to one connection one after another: a page of 10 connections x 100 frames would
    # keep 10 of 64 threads busy for 100 posts in a row. Pages keep each chain to posts/concurrency.
    ids = [f"c{i}" for i in range(2000)]
    pages = FakePageQueue()
    fan_out(
        [record(n, "big") for n in range(100)],
        connections=FakeConnectionStore({"big": ids}),
        pusher=FakePusher(),
        pages=pages,
        region="us-east-1",
        concurrency=64,
        page_posts=1000,
    )
    assert all(len(page.frames) <= 1000 // 64 for page in pages.sent)
    assert all(page.posts <= 1000 for page in pages.sent)
    assert sum(page.posts for page in pages.sent) == 2000 * 100


def test_a_huge_room_costs_the_stream_handler_a_few_reads() -> None:
    # The first read (a page and one more) decides; the rest is read in reads of up to 10,000.
    connections = FakeConnectionStore({"huge": [f"c{i}" for i in range(25_000)]})
    pages = FakePageQueue()
    run([record(1, "huge")], connections, FakePusher(), pages, page_posts=1000)
    assert connections.queries == ["huge"] * 4  # 1,000, then 10,000, 10,000 and 4,000
    assert sorted(c for page in pages.sent for c in page.connections) == sorted(connections.rooms["huge"])


# ---- running out of time: nothing posted twice, nothing dropped -------------------------------


class Clock:
    """A fake clock in milliseconds: it moves only when a post is made (no sleeping)."""

    def __init__(self) -> None:
        self.now_ms = 0
        self._lock = threading.Lock()

    def advance(self, ms: int) -> None:
        with self._lock:
            self.now_ms += ms

    def time_left(self, ms: int) -> Callable[[], float]:
        """A time to post that ends `ms` from now, in seconds as the domain reads it."""
        deadline = self.now_ms + ms
        return lambda: (deadline - self.now_ms) / 1000


class TimedPusher(FakePusher):
    """Each post takes 20 ms of the fake clock."""

    def __init__(self, clock: Clock, **outcomes: Any) -> None:
        super().__init__(**outcomes)
        self.clock = clock

    def push(self, connection_id: str, data: bytes) -> Delivery:
        self.clock.advance(20)
        return super().push(connection_id, data)


def posted_to(pusher: FakePusher, connection: str) -> list[bytes]:
    return [data for cid, data in pusher.posts if cid == connection]


def test_a_page_whose_time_runs_out_hands_back_exactly_the_connections_not_posted() -> None:
    # Given a page of 10 connections and time for 3 posts (60 ms at 20 ms a post, one at a time)
    frames = (b'{"n":1}',)
    ids = tuple(f"c{i}" for i in range(10))
    clock, pages = Clock(), FakePageQueue()
    pusher = TimedPusher(clock)
    # When the worker posts it
    result = post_page(
        Page(ids, frames),
        connections=FakeConnectionStore(),
        pusher=pusher,
        pages=pages,
        concurrency=1,
        time_left=clock.time_left(60),
    )
    # Then the 3 posted are not in the page handed back, and the other 7 are, and the page succeeds
    assert [cid for cid, _ in pusher.posts] == ["c0", "c1", "c2"]
    assert pages.sent == [Page(ids[3:], frames)]
    assert (result.retry, result.handed_back, result.late, result.delivered) == (False, 7, 7, 3)


def test_a_connection_cut_off_between_its_frames_is_handed_back_only_the_frames_it_did_not_get() -> None:
    frames = (b'{"n":1}', b'{"n":2}', b'{"n":3}')
    clock, pages = Clock(), FakePageQueue()
    pusher = TimedPusher(clock)
    post_page(
        Page(("a", "b"), frames),
        connections=FakeConnectionStore(),
        pusher=pusher,
        pages=pages,
        concurrency=1,
        time_left=clock.time_left(80),  # 4 posts: a's three, b's first
    )
    assert posted_to(pusher, "a") == list(frames)
    assert posted_to(pusher, "b") == [frames[0]]
    assert pages.sent == [Page(("b",), frames[1:])]


def test_a_page_that_had_no_time_at_all_is_handed_back_whole_and_succeeds() -> None:
    # An invocation that starts with less than the margin left posts nothing and still returns
    # before its timeout; the queue's copy is deleted, the new one goes to the next worker.
    page = Page(("a", "b"), (b"{}",))
    pages = FakePageQueue()
    pusher = FakePusher()
    result = post_page(
        page,
        connections=FakeConnectionStore(),
        pusher=pusher,
        pages=pages,
        concurrency=2,
        time_left=lambda: 0,
    )
    assert pusher.posts == []
    assert pages.sent == [page]
    assert result.retry is False


def test_a_page_on_which_no_post_went_through_is_left_to_the_redrive_even_if_time_also_ran_out() -> None:
    # a's post fails (the API unreachable), then the time runs out before b: no progress was
    # made, so the page is reported failed and counts towards the dead-letter queue.
    clock, pages = Clock(), FakePageQueue()
    result = post_page(
        Page(("a", "b"), (b"{}",)),
        connections=FakeConnectionStore(),
        pusher=TimedPusher(clock, failing={"a"}),
        pages=pages,
        concurrency=1,
        time_left=clock.time_left(20),
    )
    assert result.retry is True
    assert pages.sent == []


def test_a_failed_frame_is_handed_back_without_the_frames_that_went_through() -> None:
    frames = (b'{"n":1}', b'{"n":2}')

    class FailsFirstFrame(FakePusher):
        def push(self, connection_id: str, data: bytes) -> Delivery:
            super().push(connection_id, data)
            return Delivery.FAILED if data == frames[0] and connection_id == "a" else Delivery.DELIVERED

    pages = FakePageQueue()
    post_page(
        Page(("a", "b"), frames),
        connections=FakeConnectionStore(),
        pusher=FailsFirstFrame(),
        pages=pages,
        concurrency=2,
    )
    assert pages.sent == [Page(("a",), frames[:1])]


def test_a_stream_batch_whose_time_runs_out_queues_the_rest_and_still_succeeds() -> None:
    # Given a small room (posted inline) of 6 connections, 2 messages, and time for 5 posts
    ids = [f"c{i}" for i in range(6)]
    clock, pages = Clock(), FakePageQueue()
    pusher = TimedPusher(clock)
    # When the stream handler fans the batch out
    result = fan_out(
        [record(1, "r"), record(2, "r")],
        connections=FakeConnectionStore({"r": ids}),
        pusher=pusher,
        pages=pages,
        region="us-east-1",
        concurrency=1,
        page_posts=1000,
        time_left=clock.time_left(100),
    )
    # Then c0 and c1 got both, c2 the first; the pages hold only what each did not get
    assert [frames_of(pusher.posts, c) for c in ids] == [["m1", "m2"]] * 2 + [["m1"]] + [[]] * 3
    sent = {
        (page.connections, tuple(json.loads(f)["message"]["text"] for f in page.frames))
        for page in pages.sent
    }
    assert sent == {(("c2",), ("m2",)), (("c3", "c4", "c5"), ("m1", "m2"))}
    # and the batch succeeds: a retry from the stream would post again to c0, c1 and c2
    assert result.failed == []
    assert (result.late, result.pages_queued, result.delivered) == (4, 2, 5)


def test_a_connection_whose_retry_would_start_too_late_is_handed_back_not_dropped() -> None:
    class OutOfTimeFor(FakePusher):
        def push(self, connection_id: str, data: bytes) -> Delivery:
            outcome = super().push(connection_id, data)
            return Delivery.OUT_OF_TIME if connection_id == "slow" else outcome

    pages = FakePageQueue()
    result = run([record(1, "r")], FakeConnectionStore({"r": ["ok", "slow"]}), OutOfTimeFor(), pages)
    assert [page.connections for page in pages.sent] == [("slow",)]
    assert (result.failed_posts, result.late, result.handed_back, result.failed) == (0, 1, 1, [])


def test_a_post_that_failed_in_the_stream_handler_goes_to_the_workers_with_only_what_it_missed() -> None:
    # Given a small room where one connection's second frame fails (after the pusher's retries)
    class FailsSecondFrameOf(FakePusher):
        def push(self, connection_id: str, data: bytes) -> Delivery:
            super().push(connection_id, data)
            missed = connection_id == "flaky" and json.loads(data)["message"]["text"] == "m2"
            return Delivery.FAILED if missed else Delivery.DELIVERED

    pages = FakePageQueue()
    result = run(
        [record(1, "r"), record(2, "r")],
        FakeConnectionStore({"r": ["ok", "flaky"]}),
        FailsSecondFrameOf(),
        pages,
    )
    # Then the page queued holds that connection and that frame only, and the batch succeeds
    assert [(p.connections, [json.loads(f)["message"]["text"] for f in p.frames]) for p in pages.sent] == [
        (("flaky",), ["m2"])
    ]
    assert (result.failed_posts, result.handed_back, result.late, result.failed) == (1, 1, 0, [])


def test_when_the_late_connections_cannot_be_queued_their_rooms_records_fail_and_nothing_is_dropped() -> None:
    connections = FakeConnectionStore({"first": ["a1", "a2"], "second": ["b1", "b2"]})
    clock, pages = Clock(), FakePageQueue()
    pages.fail = True
    result = fan_out(
        [record(1, "first"), record(2, "second"), record(3, "first")],
        connections=connections,
        pusher=TimedPusher(clock),
        pages=pages,
        region="us-east-1",
        concurrency=1,
        page_posts=1000,
        time_left=clock.time_left(80),  # a1 and a2 get both frames; nobody in "second" gets one
    )
    assert result.failed == ["2"]
    assert [room for room, _ in result.unreadable_rooms] == ["second"]


@given(
    size=st.integers(min_value=1, max_value=40),
    messages=st.integers(min_value=1, max_value=4),
    gone=st.sets(st.integers(min_value=0, max_value=39), max_size=5),
    posts_per_invocation=st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=10),
    concurrency=st.sampled_from([1, 4]),
    page_posts=st.sampled_from([7, 1000]),
)
def test_through_invocations_that_run_out_of_time_every_connection_gets_every_frame_once(
    size: int,
    messages: int,
    gone: set[int],
    posts_per_invocation: list[int],
    concurrency: int,
    page_posts: int,
) -> None:
    ids = [f"c{i}" for i in range(size)]
    gone_ids = {f"c{i}" for i in gone}
    pusher, pages = FakePusher(gone=gone_ids), FakePageQueue()
    store = FakeConnectionStore({"r": ids})
    budgets = iter(posts_per_invocation * 1000)  # each invocation has time for so many posts

    def time_left() -> Callable[[], float]:
        limit = len(pusher.posts) + next(budgets)
        return lambda: 1.0 if len(pusher.posts) < limit else 0.0

    result = fan_out(
        [record(n, "r") for n in range(messages)],
        connections=store,
        pusher=pusher,
        pages=pages,
        region="us-east-1",
        concurrency=concurrency,
        page_posts=page_posts,
        time_left=time_left(),
    )
    assert result.failed == []
    done = 0
    while done < len(pages.sent):  # the workers, each page once, as the queue hands them out
        post_page(
            pages.sent[done],
            connections=store,
            pusher=pusher,
            pages=pages,
            concurrency=concurrency,
            time_left=time_left(),
        )
        done += 1
    expected = [f"m{n}" for n in range(messages)]
    for connection in ids:
        got = sorted(frames_of(pusher.posts, connection))
        if connection in gone_ids:
            assert len(got) == len(set(got))  # answered 410 (once per page holding it), never again
        else:
            assert got == expected  # each frame once: none repeated, none dropped


def test_the_time_to_post_is_the_remaining_time_less_the_margin() -> None:
    from chat.posting import time_to_post
    from chat.push import POSTING_MARGIN_SECONDS

    assert time_to_post(lambda: 15_000, POSTING_MARGIN_SECONDS)() == 15 - POSTING_MARGIN_SECONDS


def test_the_margin_leaves_each_fan_out_function_time_to_post() -> None:
    from chat.push import ATTEMPT_SECONDS, POSTING_MARGIN_SECONDS
    from stack_definition.cloudformation import load_raw

    resources = load_raw()["Resources"]
    assert POSTING_MARGIN_SECONDS > ATTEMPT_SECONDS  # a post in flight ends inside the margin
    for name in ("FanoutFunction", "FanoutWorkerFunction"):
        assert resources[name]["Properties"]["Timeout"] > POSTING_MARGIN_SECONDS


def young_and_old(now_ms: int) -> FakeConnectionStore:
    """A room of two connections that both answer 410: one that connected a minute ago (gone) and
    one that connected a second ago (still in its `$connect`: API Gateway answers 410 then too)."""
    connections = FakeConnectionStore()
    for connection_id, age_ms in (("old", 60_000), ("young", 1_000)):
        connected_at = iso_time(now_ms - age_ms)
        connections.put_connection(
            connection_id, room="r", user_id=f"u-{connection_id}", connected_at=connected_at, expires_at=0
        )
    return connections


def fanout_at(now_ms: int, connections: FakeConnectionStore, pages: FakePageQueue) -> FanoutService:
    return FanoutService(
        settings=Settings(region="us-east-1", messages_table="m", connections_table="c"),
        connections=lambda: connections,
        changes=lambda: pytest.fail("no change to apply"),
        pusher=lambda _: FakePusher(gone={"old", "young"}),
        pages=lambda: pages,
        closer=lambda: pytest.fail("nobody to close"),
        posting_margin_seconds=0.0,
        clock=lambda: now_ms / 1000,
        presence=lambda: pytest.fail("no presence to read"),
        limiter=lambda: pytest.fail("no count to throttle"),
    )


def test_a_410_forgets_a_connection_older_than_a_connect_can_last_and_keeps_a_younger_one() -> None:
    # given a room with a gone connection and one still in its $connect, both answering 410
    connections = young_and_old(NOW)
    # when the stream's fan-out posts a message to them
    result = fanout_at(NOW, connections, FakePageQueue()).fan_out(
        [record(1, "r")], remaining_ms=lambda: 60_000
    )
    # then only the old one is forgotten: the young one's client will be there in a moment
    assert result.gone == 2
    assert connections.deleted == ["old"]
    assert connections.kept_young == ["young"]
    # and once the young one is older than any $connect can last, a 410 forgets it too
    later = NOW + (CONNECT_GRACE_SECONDS + 1) * 1000
    fanout_at(later, connections, FakePageQueue()).fan_out([record(2, "r")], remaining_ms=lambda: 60_000)
    assert sorted(connections.deleted) == ["old", "young"]  # the old one was not in the room any more


def test_a_workers_page_keeps_a_young_connection_that_answered_410_as_well() -> None:
    connections = young_and_old(NOW)
    page = Page(("old", "young"), (b'{"n":1}',))
    result = fanout_at(NOW, connections, FakePageQueue()).post_page(page, remaining_ms=lambda: 60_000)
    assert result.gone == 2
    assert connections.deleted == ["old"]
    assert connections.kept_young == ["young"]

"""The clients' rule for leaving a region (chatclient.judge), played frame by frame on a clock the
test moves: what fails a send, one resend then leave, what is not the region's fault, the adaptive
heartbeat, a gap with its grace, and the sick marks that say where to go."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from chatclient.judge import (
    ACK_TIMEOUT_MS,
    ACTIVE_HEARTBEAT_MS,
    ACTIVE_WINDOW_MS,
    GAP_GRACE_MS,
    HEARTBEAT_MS,
    PONG_TIMEOUT_MS,
    SICK_MAX_MS,
    SICK_MS,
    Judge,
    SickRegions,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, milliseconds: float) -> None:
        self.now += milliseconds / 1000


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def judge(clock: Clock) -> Judge:
    return Judge(clock, draw=lambda: 1.0)  # no jitter: the intervals exactly as named


def error(message_id: str | None, code: str) -> dict[str, Any]:
    return {"type": "error", "id": message_id, "code": code, "message": "..."}


BARE_500 = {"message": "Internal server error", "connectionId": "c1", "requestId": "r1"}
BARE_429 = {"message": "Too Many Requests", "connectionId": "c1", "requestId": "r1"}
FAILURES: dict[str, Callable[[str], dict[str, Any]]] = {
    "unavailable": lambda message_id: error(message_id, "unavailable"),
    "internal_error": lambda message_id: error(message_id, "internal_error"),
    "bare internal server error": lambda message_id: BARE_500,
}


# ---------------------------------------------------------------- senders
@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_a_first_failed_send_is_resent_once_and_a_second_failure_leaves(judge: Judge, failure: str) -> None:
    frame = FAILURES[failure]
    judge.sent("01A")
    first = judge.received(frame("01A"))
    assert (first.kind, first.id) == ("resend", "01A")
    judge.sent("01A")  # the resend, on the same socket
    second = judge.received(frame("01A"))
    assert second.kind == "leave"
    assert "twice in a row" in second.reason


def test_a_missing_ack_fails_a_send_at_the_ack_timeout_and_not_before(judge: Judge, clock: Clock) -> None:
    judge.sent("01A")
    clock.advance(ACK_TIMEOUT_MS - 1)
    assert judge.check().kind == "none"
    clock.advance(1)
    verdict = judge.check()
    assert (verdict.kind, verdict.id, verdict.reason) == ("resend", "01A", "no ack")
    judge.sent("01A")
    clock.advance(ACK_TIMEOUT_MS)
    assert judge.check().kind == "leave"


def test_an_ack_between_two_failures_starts_the_count_again(judge: Judge) -> None:
    judge.sent("01A")
    judge.sent("01B")
    assert judge.received(error("01A", "unavailable")).kind == "resend"
    assert judge.received({"type": "ack", "id": "01B", "acceptedRegion": "r"}).kind == "ack"
    judge.sent("01A")
    assert judge.received(error("01A", "unavailable")).kind == "resend"


def test_a_bare_error_frame_counts_against_the_oldest_unacknowledged_send(judge: Judge, clock: Clock) -> None:
    judge.sent("01A")
    clock.advance(100)
    judge.sent("01B")
    verdict = judge.received(BARE_500)
    assert (verdict.kind, verdict.id) == ("resend", "01A")
    assert list(judge.in_flight) == ["01B"]


@pytest.mark.parametrize(
    ("frame", "kind"),
    [
        (error("01A", "rate_limited"), "later"),
        (BARE_429, "later"),
        (error("01A", "text_too_long"), "refused"),
        (error("01A", "invalid_id"), "refused"),
    ],
)
def test_throttling_and_refusals_are_not_failures_of_the_region(
    judge: Judge, clock: Clock, frame: dict[str, Any], kind: str
) -> None:
    judge.sent("01A")
    assert judge.received(frame).kind == kind
    judge.sent("01B")
    assert judge.received(error("01B", "unavailable")).kind == "resend"  # the first failure, still
    clock.advance(ACK_TIMEOUT_MS)
    assert judge.check().kind == "none"  # the answered send is not waiting for an ack any more


def test_an_answer_to_an_attempt_already_judged_is_not_counted_again(judge: Judge, clock: Clock) -> None:
    judge.sent("01A")
    clock.advance(ACK_TIMEOUT_MS)
    assert judge.check().kind == "resend"
    assert judge.received(error("01A", "unavailable")).kind == "none"  # the late answer to it


def test_once_it_says_leave_it_keeps_saying_so(judge: Judge) -> None:
    judge.sent("01A")
    judge.received(BARE_500)
    judge.sent("01A")
    judge.received(BARE_500)
    assert judge.check().kind == "leave"


# ---------------------------------------------------------------- listeners
def test_a_quiet_room_pings_after_the_long_heartbeat(judge: Judge, clock: Clock) -> None:
    assert judge.ping_due() == clock.now + HEARTBEAT_MS / 1000


def test_an_active_room_pings_after_the_short_heartbeat_until_the_window_closes(
    judge: Judge, clock: Clock
) -> None:
    judge.received({"type": "message", "message": {"id": "01A"}, "deliveredBy": "r"})
    start = clock.now
    assert judge.ping_due() == start + ACTIVE_HEARTBEAT_MS / 1000
    clock.advance(ACTIVE_WINDOW_MS + 1)
    assert judge.ping_due() == start + HEARTBEAT_MS / 1000


def test_each_silence_is_jittered_within_ten_percent(clock: Clock) -> None:
    draws = iter([0.9, 1.1])
    judge = Judge(clock, draw=lambda: next(draws))
    assert judge.ping_due() == pytest.approx(clock.now + 0.9 * HEARTBEAT_MS / 1000)
    judge.received({"type": "pong", "latest": ""})
    assert judge.ping_due() == pytest.approx(clock.now + 1.1 * HEARTBEAT_MS / 1000)
    real = Judge(clock)
    assert 0.9 * HEARTBEAT_MS / 1000 <= real.ping_due() - clock.now <= 1.1 * HEARTBEAT_MS / 1000  # type: ignore[operator]


def test_no_pong_within_the_timeout_leaves(judge: Judge, clock: Clock) -> None:
    judge.pinged()
    assert judge.ping_due() is None
    clock.advance(PONG_TIMEOUT_MS - 1)
    assert judge.check().kind == "none"
    clock.advance(1)
    assert judge.check().reason == "no pong"


@pytest.mark.parametrize("frame", [error(None, "unavailable"), BARE_500])
def test_an_error_answering_the_heartbeat_leaves(judge: Judge, frame: dict[str, Any]) -> None:
    judge.pinged()
    assert judge.received(frame).kind == "leave"


def test_an_error_without_an_id_and_no_ping_outstanding_is_ignored(judge: Judge) -> None:
    assert judge.received(error(None, "malformed_json")).kind == "none"


def test_a_pong_announcing_a_newer_message_that_is_pushed_within_the_grace_is_no_gap(
    judge: Judge, clock: Clock
) -> None:
    judge.held("01A")
    judge.pinged()
    assert judge.received({"type": "pong", "latest": "01B", "region": "r"}).kind == "pong"
    clock.advance(GAP_GRACE_MS - 1)
    judge.held("01B")
    clock.advance(1)
    assert judge.check().kind == "none"


def test_a_newer_message_still_missing_after_the_grace_leaves(judge: Judge, clock: Clock) -> None:
    judge.held("01A")
    judge.pinged()
    judge.received({"type": "pong", "latest": "01B", "region": "r"})
    clock.advance(GAP_GRACE_MS - 1)
    assert judge.check().kind == "none"
    clock.advance(1)
    verdict = judge.check()
    assert verdict.kind == "leave"
    assert "01B" in verdict.reason


def test_a_newer_message_than_announced_also_closes_the_gap(judge: Judge, clock: Clock) -> None:
    judge.received({"type": "pong", "latest": "01B"})
    judge.held("01C")
    clock.advance(GAP_GRACE_MS)
    assert judge.check().kind == "none"


@pytest.mark.parametrize("latest", ["", "01A", "00Z"])
def test_a_pong_with_nothing_newer_is_no_gap(judge: Judge, clock: Clock, latest: str) -> None:
    judge.held("01A")
    judge.received({"type": "pong", "latest": latest})
    clock.advance(GAP_GRACE_MS)
    assert judge.check().kind == "none"


def test_the_next_deadline_is_the_earliest_of_ack_pong_and_gap(judge: Judge, clock: Clock) -> None:
    start = clock.now
    judge.sent("01A")
    judge.pinged()
    assert judge.next_deadline() == start + ACK_TIMEOUT_MS / 1000
    judge.received({"type": "ack", "id": "01A"})
    assert judge.next_deadline() == start + PONG_TIMEOUT_MS / 1000


# ---------------------------------------------------------------- where to go
def test_a_region_left_is_sick_for_a_minute_doubling_on_each_new_mark_up_to_ten(clock: Clock) -> None:
    sick = SickRegions(clock)
    assert [sick.mark("us") for _ in range(6)] == [min(SICK_MS * 2**n, SICK_MAX_MS) / 1000 for n in range(6)]
    assert sick.marks["us"][1] == clock.now + SICK_MAX_MS / 1000


def test_a_sick_mark_ends_after_its_time(clock: Clock) -> None:
    sick = SickRegions(clock)
    sick.mark("us")
    assert sick.sick("us")
    assert sick.choose(["us", "eu"]) == ["eu"]
    clock.advance(SICK_MS)
    assert not sick.sick("us")
    assert not sick.any()
    assert sick.choose(["us", "eu"]) == ["us", "eu"]


def test_when_every_region_is_sick_it_fails_open_to_the_one_whose_mark_ends_first(clock: Clock) -> None:
    sick = SickRegions(clock)
    sick.mark("us")
    sick.mark("us")  # two minutes
    clock.advance(1000)
    sick.mark("eu")  # one minute, from a second later: ends first
    assert sick.choose(["us", "eu"]) == ["eu"]

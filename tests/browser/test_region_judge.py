"""The page's rule for leaving a region (frontend/judge.js), run in the browser with a fake clock.

judge.js is pure: the time is an argument and so is the heartbeat's random source, so each test
plays a connection's frames at chosen instants and reads the verdicts. The module is the one the
front door serves to the page.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

pytestmark = pytest.mark.browser

# What API Gateway itself sends when a route's function errs or is throttled, and when the
# stage's throttle drops a frame: no `type`, no id.
GATEWAY_ERROR = {"message": "Internal server error", "connectionId": "c1", "requestId": "r1"}
GATEWAY_THROTTLE = {"message": "Too Many Requests", "connectionId": "c1", "requestId": "r2"}
# In the scripts: H, a message id the page holds; L, a later one; N, later still.
IDS = ["01J00000000000000000000001", "01J00000000000000000000009", "01J0000000000000000000000A"]


@pytest.fixture(scope="module")
def judge_page(browser: Any, stack: dict[str, Any]) -> Iterator[Any]:
    context = browser.new_context(base_url=stack["frontDoorUrl"])
    page = context.new_page()
    page.goto("/judge.js")  # same origin as the page, no page script running
    yield page
    context.close()


@pytest.fixture
def play(judge_page: Any) -> Any:
    """play(body, arg): run `body` with `J` the judge module and `arg` the argument; its return value."""

    def play_(body: str, arg: Any = None) -> Any:
        prelude = f"const J = await import('/judge.js'); const [H, L, N] = {json.dumps(IDS)};"
        return judge_page.evaluate(f"async (arg) => {{ {prelude} {body} }}", arg)

    return play_


def test_the_constants_are_the_documented_ones(play: Any) -> None:
    # given the module the page loads, then its rule is the one docs/architecture.md states
    assert play(
        "return [J.ACK_TIMEOUT_MS, J.RESEND_AFTER_MS, J.ACTIVE_HEARTBEAT_MS, J.HEARTBEAT_MS,"
        " J.HEARTBEAT_JITTER, J.ACTIVE_WINDOW_MS, J.PONG_TIMEOUT_MS, J.GAP_GRACE_MS,"
        " J.SICK_MS, J.SICK_MAX_MS];"
    ) == [3000, 500, 20000, 150000, 0.1, 300000, 10000, 3000, 60000, 600000]


def test_a_send_answered_unavailable_is_sent_again_once_and_a_second_failure_leaves(play: Any) -> None:
    # given a send, answered unavailable; when it is sent again and fails again
    verdicts = play(
        """const judge = new J.RegionJudge(0);
        judge.sent('m1', 0);
        const first = judge.received({type: 'error', id: 'm1', code: 'unavailable'}, 100, '');
        judge.sent('m1', 600);
        const second = judge.received({type: 'error', id: 'm1', code: 'internal_error'}, 700, '');
        return [first, second];"""
    )
    # then the first failure resends the same id after 500 ms, the second leaves the region
    assert verdicts[0] == {"resend": "m1", "afterMs": 500, "why": "unavailable"}
    assert verdicts[1]["leave"] == "backend"


def test_api_gateways_bare_error_counts_against_the_oldest_unacknowledged_send(play: Any) -> None:
    # given three sends, the first acknowledged; when API Gateway answers two bare errors
    verdicts = play(
        """const judge = new J.RegionJudge(0);
        for (const [id, at] of [['m1', 0], ['m2', 10], ['m3', 20]]) judge.sent(id, at);
        judge.received({type: 'ack', id: 'm1'}, 30, '');
        const first = judge.received(arg, 40, '');
        const second = judge.received(arg, 50, '');
        return [first, second];""",
        GATEWAY_ERROR,
    )
    # then the first is m2's failure (resend it), the second one in a row leaves
    assert verdicts[0]["resend"] == "m2"
    assert verdicts[1]["leave"] == "backend"


def test_a_bare_error_with_nothing_unacknowledged_fails_only_an_outstanding_ping(play: Any) -> None:
    # given nothing sent, when a bare error comes with no ping out, and then with one out
    verdicts = play(
        """const judge = new J.RegionJudge(0, () => 0.5);
        const quiet = judge.received(arg, 10, '');
        const ping = judge.tick(20010, '', 0);
        return [quiet, ping, judge.received(arg, 20020, '')];""",
        GATEWAY_ERROR,
    )
    # then no verdict without a ping; with one, it is the heartbeat's answer: leave
    assert verdicts[:2] == [None, {"ping": True}]
    assert verdicts[2]["leave"] == "backend"


def test_a_send_with_no_ack_in_3_s_fails(play: Any) -> None:
    # given a send at 1000 ms, when the clock reaches 3999 ms and then 4000 ms
    verdicts = play(
        """const judge = new J.RegionJudge(0, () => 0.5);
        judge.sent('m1', 1000);
        return [judge.tick(3999, '', 0), judge.tick(4000, '', 0)];"""
    )
    # then nothing before 3 s; at 3 s it is sent again, once
    assert verdicts[0] is None
    assert verdicts[1]["resend"] == "m1"


def test_an_ack_between_two_failures_keeps_the_region(play: Any) -> None:
    # given a failed send, then an ack of another, when a third send fails
    verdict = play(
        """const judge = new J.RegionJudge(0);
        judge.sent('m1', 0); judge.sent('m2', 0); judge.sent('m3', 0);
        judge.received({type: 'error', id: 'm1', code: 'unavailable'}, 10, '');
        judge.received({type: 'ack', id: 'm2'}, 20, '');
        return judge.received({type: 'error', id: 'm3', code: 'unavailable'}, 30, '');"""
    )
    # then it is a first failure again: resend, stay
    assert verdict["resend"] == "m3"


def test_rate_limits_refused_input_and_the_stages_throttle_are_not_failures_of_the_region(play: Any) -> None:
    # given sends refused for our own reasons, each many times
    verdicts = play(
        """const judge = new J.RegionJudge(0);
        const out = [];
        for (let round = 0; round < 5; round += 1) {
          judge.sent('a', round * 10);
          const limited = {type: 'error', id: 'a', code: 'rate_limited', retryAfterMs: 100};
          out.push(judge.received(limited, round * 10 + 1, ''));
          judge.sent('b', round * 10);
          out.push(judge.received({type: 'error', id: 'b', code: 'text_too_long'}, round * 10 + 2, ''));
          judge.sent('c', round * 10);
          out.push(judge.received(arg, round * 10 + 3, ''));
        }
        out.push(judge.tick(60000, '', 0)); // none of them is waited for any more
        return out;""",
        GATEWAY_THROTTLE,
    )
    # then the region is never left: the throttled frame is only handed back to be sent later
    assert verdicts[-1] == {"ping": True}
    assert all(v is None or v == {"throttled": "c"} for v in verdicts[:-1])
    assert {"throttled": "c"} in verdicts


def test_only_api_gateways_own_frames_are_taken_for_them(play: Any) -> None:
    # given frames of ours that mention the same words, then none is API Gateway's
    kinds = play(
        """return arg.map((frame) => J.gatewayFrame(frame));""",
        [
            GATEWAY_ERROR,
            GATEWAY_THROTTLE,
            {"type": "error", "id": None, "code": "internal_error", "message": "Internal server error"},
            {"type": "message", "message": {"text": "Too Many Requests"}},
            {"type": "pong", "latest": ""},
        ],
    )
    assert kinds == ["internal_error", "throttled", None, None, None]


def test_the_heartbeat_is_short_in_an_active_room_and_long_in_an_idle_one(play: Any) -> None:
    # given connections whose jitter draws are the extremes, in an active and in an idle room
    first_pings = play(
        """const firstPing = (random, lastActivityAt) => {
          const judge = new J.RegionJudge(0, random);
          for (let now = 0; now <= 200000; now += 100) {
            if (judge.tick(now, '', lastActivityAt)?.ping) return now;
          }
          return null;
        };
        const active = 0, idle = -400000;
        return [firstPing(() => 0, active), firstPing(() => 0.999999, active),
                firstPing(() => 0, idle), firstPing(() => 0.999999, idle)];"""
    )
    # then the first ping goes after 20 s ± 10% when active, 150 s ± 10% when idle
    assert first_pings == [18000, 22000, 135000, 165000]


def test_a_room_turns_idle_five_minutes_after_its_last_message(play: Any) -> None:
    assert play(
        "return [J.heartbeatInterval(299999, 0), J.heartbeatInterval(300000, 0),"
        " J.heartbeatInterval(5, null)];"
    ) == [20000, 150000, 150000]


def test_a_ping_with_no_pong_in_10_s_leaves_and_a_pong_in_time_does_not(play: Any) -> None:
    # given a ping sent at 20 s (active room, no jitter)
    verdicts = play(
        """const answered = new J.RegionJudge(0, () => 0.5);
        const silent = new J.RegionJudge(0, () => 0.5);
        const pings = [answered.tick(20000, '', 0), silent.tick(20000, '', 0)];
        answered.received({type: 'pong', latest: '', region: 'us-east-1'}, 25000, '');
        const later = [answered.tick(30000, '', 0), silent.tick(29999, '', 0), silent.tick(30000, '', 0)];
        return [...pings, ...later];"""
    )
    # then the answered one stays; the silent one leaves 10 s after its ping
    assert verdicts[:4] == [{"ping": True}, {"ping": True}, None, None]
    assert verdicts[4]["leave"] == "silent"


def test_an_error_frame_without_an_id_while_a_ping_is_out_leaves(play: Any) -> None:
    # given the heartbeat's read of the table failing (the ping's error frame has no id)
    verdicts = play(
        """const error = {type: 'error', id: null, code: 'unavailable', message: 'try again'};
        const judge = new J.RegionJudge(0, () => 0.5);
        const before = judge.received(error, 100, '');
        const ping = judge.tick(20100, '', 0);
        return [before, ping, judge.received(error, 20150, '')];"""
    )
    # then without a ping out it is no verdict; with one, it leaves
    assert verdicts[:2] == [None, {"ping": True}]
    assert verdicts[2]["leave"] == "backend"


def test_a_pong_naming_a_message_not_held_leaves_after_the_grace_unless_it_arrives(play: Any) -> None:
    # given pongs naming the room's newest id in the region, newer than the newest we hold
    verdicts = play(
        """const pong = {type: 'pong', latest: L, region: 'us-east-1'};
        const missing = new J.RegionJudge(0, () => 0.5);
        const arrives = new J.RegionJudge(0, () => 0.5);
        const newer = new J.RegionJudge(0, () => 0.5);
        for (const judge of [missing, arrives, newer]) judge.received(pong, 1000, H);
        return [
          missing.tick(3999, H, 0),
          missing.tick(4000, H, 0),
          arrives.tick(2000, L, 0),
          arrives.tick(9000, L, 0),
          newer.tick(4000, N, 0),
        ];"""
    )
    # then the missing one leaves after 3 s; one that arrives, or a newer one, keeps the region
    assert verdicts[0] is None
    assert verdicts[1]["leave"] == "backend"
    assert verdicts[2:] == [None, None, None]


def test_a_pong_without_latest_or_with_nothing_newer_is_no_gap(play: Any) -> None:
    verdicts = play(
        """const old = new J.RegionJudge(0, () => 0.5);
        old.received({type: 'pong'}, 1000, '');
        const same = new J.RegionJudge(0, () => 0.5);
        same.received({type: 'pong', latest: H}, 1000, H);
        const empty = new J.RegionJudge(0, () => 0.5);
        empty.received({type: 'pong', latest: ''}, 1000, '');
        return [old.tick(9000, '', 0), same.tick(9000, H, 0), empty.tick(9000, '', 0)];"""
    )
    assert verdicts == [None, None, None]


def test_sick_marks_double_for_each_new_mark_up_to_ten_minutes(play: Any) -> None:
    # given a region marked sick again each time its mark ends
    durations = play(
        """const sick = new J.SickRegions();
        const out = [];
        let now = 0;
        for (let i = 0; i < 6; i += 1) { const ms = sick.mark('us-east-1', now); out.push(ms); now += ms; }
        return out;"""
    )
    # then 1, 2, 4, 8 minutes, then the 10-minute cap
    assert durations == [60000, 120000, 240000, 480000, 600000, 600000]


def test_new_connections_avoid_sick_regions_and_fail_open_when_all_are_sick(play: Any) -> None:
    # given us-east-1 marked at 0 s and eu-west-2 at 10 s
    usable = play(
        """const sick = new J.SickRegions();
        const regions = ['us-east-1', 'eu-west-2'];
        const out = [sick.usable(regions, 0)];
        sick.mark('us-east-1', 0);
        out.push(sick.usable(regions, 5000));
        sick.mark('eu-west-2', 10000);
        out.push(sick.usable(regions, 20000));
        out.push(sick.usable(regions, 60000));
        return out;"""
    )
    # then both, then the one not sick, then (all sick) the one whose mark ends first, then the
    # one whose mark has ended
    assert usable == [["us-east-1", "eu-west-2"], ["eu-west-2"], ["us-east-1"], ["us-east-1"]]


def test_an_unnamed_error_just_after_a_typing_frame_is_the_typing_frames_not_the_heartbeats(
    play: Any,
) -> None:
    # given a ping out and a typing frame just sent (never acknowledged: a failing region answers
    # it with an error that names no message)
    verdicts = play(
        """const judge = new J.RegionJudge(0, () => 0.5);
        const ping = judge.tick(20010, '', 0);
        judge.typingSent(20020);
        const typingAnswer = judge.received({type: 'error', id: null, code: 'unavailable'}, 20030, '');
        const secondAnswer = judge.received({type: 'error', id: null, code: 'unavailable'}, 20040, '');
        return [ping, typingAnswer, secondAnswer];"""
    )
    # then the first unnamed error is the typing frame's; the next one is the heartbeat's: leave
    assert verdicts[:2] == [{"ping": True}, None]
    assert verdicts[2]["leave"] == "backend"


def test_a_bare_error_after_a_typing_frame_is_not_a_sends_failure(play: Any) -> None:
    # given a typing frame, then a send, when API Gateway answers one bare error
    verdicts = play(
        """const judge = new J.RegionJudge(0, () => 0.5);
        judge.typingSent(0);
        judge.sent('m1', 10);
        const bare = judge.received(arg, 20, '');
        judge.received({type: 'ack', id: 'm1'}, 30, '');
        return [bare, judge.tick(5000, '', 0)];""",
        GATEWAY_ERROR,
    )
    # then it goes to the typing frame: the send is neither resent nor failed, and is acked
    assert verdicts == [None, None]


def test_typing_frames_are_never_waited_for(play: Any) -> None:
    # given typing frames every 2 s for a minute, and no answer to any of them
    verdicts = play(
        """const judge = new J.RegionJudge(0, () => 0.5);
        const out = [];
        for (let at = 0; at < 60000; at += 2000) {
          judge.typingSent(at);
          judge.received({type: 'message'}, at + 1, '');  // the room is lively: no ping comes due
          out.push(judge.tick(at + 1000, '', at));
        }
        // an unnamed error long after the last typing frame, with a ping out, is the heartbeat's
        const ping = judge.tick(300000, '', 0);
        return [out.filter((v) => v !== null), ping, judge.received(arg, 300010, ''), J.TYPING_ANSWER_MS];""",
        GATEWAY_ERROR,
    )
    # then no verdict ever comes from them, and they do not hide a later heartbeat failure
    assert verdicts[0] == []
    assert verdicts[1] == {"ping": True}
    assert verdicts[2]["leave"] == "backend"
    assert verdicts[3] == 3000

"""The presence benchmark in quick mode: what each presence event costs, counted on the local stack
in both regions, and how soon the other region shows it. No assertion is about time beyond the
target's 2 s: the figures belong to docs/performance.md, from a full run."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench.__main__ import main
from stack_definition.template import load

pytestmark = pytest.mark.timeout(300)
HOME, OTHER = load().regions[:2]
FANOUT = "lambda.Invoke:FanoutFunction"
POST = "apigatewaymanagementapi.PostToConnection"


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    assert main(["presence", "--quick", "--out", str(out)]) == 0
    found: dict[str, Any] = json.loads((out / "presence.json").read_text())
    return found


def test_every_step_was_counted_at_least_once_without_a_keeper_beat(result: dict[str, Any]) -> None:
    assert result["quick"] is True
    assert all(n >= 1 for n in result["stepsCounted"].values()), result["stepsCounted"]


def test_an_enter_invokes_each_regions_fan_out_once_and_posts_to_the_room_there(
    result: dict[str, Any],
) -> None:
    listeners = result["listenersPerRegion"]
    calls = result["calls"]["enter"]
    assert calls[HOME][FANOUT] == calls[OTHER][FANOUT] == 1
    # every listener in each region, not the newcomer (it reads GET presence)
    assert (calls[HOME][POST], calls[OTHER][POST]) == (listeners, listeners)
    # one membership write more than a second tab's `$connect`, and nothing written in the other region
    assert calls[HOME]["dynamodb.PutItem"] == result["calls"]["secondTab"][HOME]["dynamodb.PutItem"] + 1
    assert not any(op.startswith("dynamodb.") and op != "dynamodb.Query" for op in calls[OTHER])
    money = result["dollarsPerMillion"]["enter"]
    # the membership, its copy in the other region, and its index entry in each
    assert money["writeUnits"] == calls[HOME]["dynamodb.PutItem"] + calls[HOME]["dynamodb.UpdateItem"] + 3


def test_a_second_tab_and_its_close_write_nothing_global_and_invoke_no_fan_out(
    result: dict[str, Any],
) -> None:
    for step in ("secondTab", "closeSecondTab"):
        calls = result["calls"][step]
        assert FANOUT not in calls[HOME], step
        assert calls[OTHER] == {}, step
        assert result["dollarsPerMillion"][step]["posts"] == 0
    assert result["presenceShare"]["enter"] > 0
    assert result["presenceShare"]["leave"] > 0


def test_a_leave_deletes_the_membership_and_tells_both_regions(result: dict[str, Any]) -> None:
    calls = result["calls"]["leave"]
    assert calls[HOME]["dynamodb.DeleteItem"] == 2  # the connection and the membership
    assert calls[HOME][FANOUT] == calls[OTHER][FANOUT] == 1
    assert calls[HOME][POST] == calls[OTHER][POST] == result["listenersPerRegion"]


def test_typing_crosses_once_and_a_dropped_one_costs_one_failed_write_and_nothing_else(
    result: dict[str, Any],
) -> None:
    typing, dropped = result["calls"]["typing"], result["calls"]["droppedTyping"]
    assert typing[HOME]["dynamodb.PutItem"] == 1
    assert typing[HOME][FANOUT] == typing[OTHER][FANOUT] == 1
    # every listener, and the typist's other tab, never its own socket
    assert (typing[HOME][POST], typing[OTHER][POST]) == (
        result["listenersPerRegion"] + 1,
        1 * result["listenersPerRegion"],
    )
    assert dropped == {
        HOME: {
            "apigateway.WebSocketMessage": 1,
            "dynamodb.PutItem": 1,
            "lambda.Invoke:SendMessageFunction": 1,
        },
        OTHER: {},
    }
    assert result["dollarsPerMillion"]["droppedTyping"]["fanoutInvocations"] == 0


def test_the_other_region_shows_every_event_within_2_s_and_no_frame_came_twice(
    result: dict[str, Any],
) -> None:
    for kind in ("enter", "leave", "typing"):
        latency = result["latencyMs"][kind]["otherRegion"]
        assert latency["n"] == result["rounds"] * result["listenersPerRegion"], kind
        assert 0 < latency["p50"] <= latency["p99"] < 2000, kind
    assert result["latencyMs"]["message"]["otherRegion"]["n"] > 0
    assert result["target"]["met"] is True


def test_the_keeper_and_the_large_room_bounds_are_reported(result: dict[str, Any]) -> None:
    keeper = result["keeper"]
    assert keeper["invocationsPerMonth"] == 30 * 24 * 60
    assert keeper["beatsPerMonth"] == 4 * keeper["invocationsPerMonth"]
    assert keeper["dollarsPerRegionMonth"]["total"] > 0
    large = result["largeRoom"]
    assert large["perEventPerRegion"]["posts"] == 0  # large rooms get count frames instead
    assert large["countFramesPerHourPerRegionAtMost"] == 720
    assert large["countFramePerRegion"]["posts"] == large["connectionsPerRegion"]

"""Each benchmark in quick mode produces well-formed results. No assertion is about time: the
figures belong to docs/performance.md, from a full run on a known machine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import main
from stack_definition.template import load

pytestmark = pytest.mark.timeout(240)
REGIONS = load().regions


def _positive(summary: dict[str, Any]) -> None:
    assert summary["n"] > 0
    for key in ("p50", "p90", "p99", "max", "mean"):
        assert summary[key] > 0, (key, summary)
    assert summary["p50"] <= summary["p90"] <= summary["p99"] <= summary["max"]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench")
    assert main(["--quick", "--out", str(out)]) == 0
    return {path.stem: json.loads(path.read_text()) for path in out.glob("*.json")} | {
        "_figures": {"names": sorted(p.name for p in Path(out).glob("*.png"))}
    }


def test_every_benchmark_writes_its_results_and_the_figures(results: dict[str, dict[str, Any]]) -> None:
    assert {"latency", "fanout", "coldstart", "cost", "capacity", "changes"} <= set(results)
    assert results["_figures"]["names"] == ["fanout.png", "latency.png"]
    for name in ("latency", "fanout", "coldstart", "cost", "capacity", "changes"):
        result = results[name]
        assert result["benchmark"] == name
        assert result["quick"] is True
        assert result["machine"]["nproc"] >= 1
        assert result["target"].get("measured") is False or isinstance(result["target"]["met"], bool)


def test_latency_reports_percentiles_and_the_floor_for_both_paths(results: dict[str, dict[str, Any]]) -> None:
    rows = results["latency"]["rows"]
    assert {(r["cross"], r["clients"]) for r in rows} == {(False, 1), (False, 3), (True, 1), (True, 3)}
    for row in rows:
        _positive(row["latencyMs"])
        _positive(row["floorMs"])
        assert row["latencyMs"]["n"] == row["messages"] * row["clients"]
        assert all(row["ratioToFloor"][q] > 0 for q in ("p50", "p90", "p99"))
        for kind in ("edit", "delete"):  # each measured message is then edited and deleted
            _positive(row["changesMs"][kind])
            assert row["changesMs"][kind]["n"] == row["latencyMs"]["n"]
        assert row["burst"]["messagesPerSecond"] > 0
    assert results["latency"]["replicationDelaySeconds"] > 0


def test_fanout_queries_each_room_once_per_batch_and_posts_once_per_connection(
    results: dict[str, dict[str, Any]],
) -> None:
    result = results["fanout"]
    layers = {(r["layer"], r["connections"], r["concurrency"]) for r in result["rows"]}
    assert layers == {(layer, n, c) for layer in ("domain", "handler") for n in (10, 50) for c in (64, 1)}
    for row in result["rows"]:
        assert row["seconds"] > 0
        assert row["connectionsQueries"] == 1
        assert row["posts"] == row["connections"]
    assert result["multiRoomBatch"]["connectionsQueries"] == result["multiRoomBatch"]["rooms"]


def test_coldstart_times_every_handler_against_boto3(results: dict[str, dict[str, Any]]) -> None:
    result = results["coldstart"]
    modules = result["modules"]
    handlers = {function.handler.rsplit(".", 1)[0] for function in load().functions.values()}
    assert "chat.handlers.ws_send" in handlers  # the template's functions were read
    assert set(modules) == {"boto3", *handlers}
    assert modules["boto3"]["ratioToBoto3"] == 1.0
    assert all(row["medianMs"] > 0 and row["ratioToBoto3"] > 0 for row in modules.values())
    packages = result["packages"]
    if packages["present"]:
        assert all(size["bytes"] > 0 for size in packages["functions"].values())
    else:
        assert "check_template" in packages["note"]


def test_cost_counts_one_write_one_query_per_region_and_one_post_per_recipient(
    results: dict[str, dict[str, Any]],
) -> None:
    result = results["cost"]
    assert [r["connectionsPerRegion"] for r in result["rows"]] == [1, 3]
    for row in result["rows"]:
        calls = row["perMessage"]
        n = row["connectionsPerRegion"]
        assert calls[REGIONS[0]]["dynamodb.PutItem"] == 1  # the sender's region
        # the sender's and its room's guest budget: two limiter writes there, none elsewhere
        assert calls[REGIONS[0]]["dynamodb.UpdateItem"] == 2
        # the fan-out's query, plus at most one look-alike check for a guest's message
        assert 1 <= calls[REGIONS[0]]["dynamodb.Query"] <= 2
        for region in REGIONS:
            assert calls[region]["dynamodb.Query"] == 1 or region == REGIONS[0]
            assert calls[region]["apigatewaymanagementapi.PostToConnection"] == n
            # the connection and its user's membership of the room (each bench client is a
            # user of its own: its first connection there); on close, both deleted
            assert row["perConnect"][region]["dynamodb.PutItem"] == 2
            assert row["perDisconnect"][region]["dynamodb.DeleteItem"] == 2
        assert row["expected"]["met"] is True
        money = row["dollarsPerMillionMessages"]
        assert money["total"] > 0
        assert money["scanInstead"][1]["total"] > money["total"]  # scanning a busy table costs more
    assert result["prices"]["websocketMessagePerMillion"] > 0


def test_changes_count_one_conditional_write_per_edit_and_per_delete_where_accepted(
    results: dict[str, dict[str, Any]],
) -> None:
    calls = results["changes"]["calls"]
    accepting, other = REGIONS[0], REGIONS[1]
    # a guest's two rate limiter writes, then the change's own conditional UpdateItem
    assert calls["edit"][accepting]["dynamodb.UpdateItem"] == 3
    assert "dynamodb.PutItem" not in calls["edit"][accepting]
    assert calls["delete"][accepting]["dynamodb.UpdateItem"] == 3
    # after it, off the request path: the tombstone, and the other region's delete on its arrival
    assert calls["delete"][accepting]["dynamodb.PutItem"] == 1
    assert calls["delete"][other]["dynamodb.UpdateItem"] == 1
    for kind in ("message", "edit", "delete"):
        for region in REGIONS:
            assert calls[kind][region]["apigatewaymanagementapi.PostToConnection"] == 1
        _positive(results["changes"]["latencyMs"][kind])
    assert results["changes"]["dollarsPerMillion"]["delete"]["dynamodb"] > 0


def test_capacity_measures_messages_and_deliveries_per_second_for_each_room_size(
    results: dict[str, dict[str, Any]],
) -> None:
    rows = results["capacity"]["rows"]
    assert [r["recipients"] for r in rows] == [1, 3]
    for row in rows:
        assert row["messages"] > 0
        assert row["messagesPerSecond"] == pytest.approx(row["messages"] / row["seconds"], rel=0.05)
        assert row["deliveriesPerSecond"] == pytest.approx(
            row["messagesPerSecond"] * row["recipients"], rel=0.01
        )
        assert row["latencyMs"]["n"] == row["messages"] * row["recipients"]
        _positive(row["latencyMs"])

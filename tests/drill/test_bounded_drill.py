"""A drill against a stack that stalls still ends on time, with a report that says why it failed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from drill.__main__ import Drill, parse_args
from tests.drill.fake_regions import FakeRegions, FakeTarget, fake_regions

SETTLE = 2.0


@pytest.fixture
def stalled() -> Iterator[FakeRegions]:
    """Given us-east-1 accepts connections and requests but never answers them, and nothing is
    delivered from one client to another (replication and fan-out stuck)."""
    with fake_regions() as regions:
        regions.stalled.add("us-east-1")
        regions.deliver = False
        yield regions


@pytest.mark.timeout(60)
def test_a_drill_of_a_stalled_stack_ends_within_its_settle_time_and_says_why_it_failed(
    stalled: FakeRegions, tmp_path: Path
) -> None:
    args = parse_args(
        [
            *("--region", "eu-west-2", "--hold", "1", "--warmup", "0.5", "--cooldown", "0.2"),
            *("--clients", "4", "--rate", "4", "--probe-interval", "0.1", "--settle", str(SETTLE)),
            *("--output", str(tmp_path / "report.json")),
        ]
    )
    report = asyncio.run(
        Drill(args, FakeTarget(stalled, name="stalled", direct=False), ["over capacity"]).run()
    )

    times = {event["event"]: event["t"] for event in report["timeline"]}
    assert times["settled"] - times["stopped_sending"] <= SETTLE + 1.0
    assert report["verdict"] == "FAIL"
    assert report["undone"] is True  # nothing was left changed: the failure is the stack's
    assert report["unacked"] > 0
    assert report["lost"] > 0
    failures = " | ".join(report["failures"])
    assert f"{report['unacked']} messages never acknowledged" in failures
    assert f"{report['lost']} acknowledged messages were not held by every client" in failures
    assert "the drill asked for more than the stack can serve (see the warning)" in failures
    assert report["warnings"] == ["over capacity"]
    settled = next(e for e in report["timeline"] if e["event"] == "settled")
    assert settled["clients_behind"] > 0
    assert settled["awaiting_ack"] == 2  # the two clients of the stalled region

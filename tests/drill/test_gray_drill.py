"""A drill of a gray failure against two fake regions: the drilled region keeps its sockets open
and answers every send and every ping with `unavailable`, and pushes nothing. Its senders leave
on their failed sends and its listeners on their heartbeat; the report gives each role apart."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from drill.__main__ import Drill, parse_args
from tests.drill.fake_regions import FakeRegions, FakeTarget, fake_regions


@pytest.fixture
def regions() -> Iterator[FakeRegions]:
    with fake_regions() as fake:
        yield fake


@pytest.mark.timeout(120)
def test_a_gray_failure_moves_senders_by_their_sends_and_listeners_by_their_heartbeat(
    regions: FakeRegions, tmp_path: Path
) -> None:
    args = parse_args(
        [
            *("--region", "us-east-1", "--mode", "dynamodb", "--hold", "4", "--warmup", "1"),
            *("--cooldown", "0.5", "--clients", "2", "--rate", "3", "--listeners", "2"),
            *("--active-heartbeat", "1", "--probe-interval", "0.1", "--settle", "10"),
            *("--output", str(tmp_path / "report.json")),
        ]
    )
    report = asyncio.run(Drill(args, FakeTarget(regions, name="gray", gray=True)).run())

    assert report["verdict"] == "PASS", report["failures"]
    assert (report["mode"], report["fault"]) == ("dynamodb", "dynamodb")
    senders, listeners = report["senders"], report["listeners"]
    assert (senders["clients"], senders["reached"], senders["never_served"]) == (2, 1, 0)
    assert (listeners["clients"], listeners["reached"], listeners["never_served"]) == (2, 1, 0)
    assert senders["lost"] == listeners["lost"] == 0
    assert senders["duplicated"] == listeners["duplicated"] == 0
    assert report["histories"]["equal"] is True
    assert report["presence"]["equal"] is True  # the healed region lists nobody who left it
    moved = {c["name"]: c for c in report["clients"] if c["leaves"]}
    assert sorted(moved) == ["listener-1", "sender-1"]  # the two in the drilled region
    assert all(c["regions"] == ["us-east-1", "eu-west-2"] for c in moved.values())
    assert "twice in a row" in moved["sender-1"]["leaves"][0]["reason"]
    assert moved["listener-1"]["leaves"][0]["reason"] == "heartbeat: unavailable"
    assert report["acked"] == report["sent"]

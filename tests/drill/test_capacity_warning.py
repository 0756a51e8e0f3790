"""The drill warns, before it starts, when it asks the local stack for more than it serves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drill import capacity
from drill.__main__ import main
from stack_definition.state import StateDir
from stack_definition.template import region_names

REGIONS = region_names()

ROWS = [
    {"recipients": 1, "messagesPerSecond": 90.0, "deliveriesPerSecond": 90.0},
    {"recipients": 10, "messagesPerSecond": 50.0, "deliveriesPerSecond": 500.0},
    {"recipients": 30, "messagesPerSecond": 27.0, "deliveriesPerSecond": 810.0},
]


def test_the_issues_overloaded_drill_is_warned_about() -> None:
    (warning,) = capacity.warnings(30, 4, ROWS)
    assert "120 messages/s to 30 recipients (3600 deliveries/s)" in warning
    assert "serves about 27 messages/s to a room of 30" in warning


def test_a_drill_within_capacity_gets_no_warning() -> None:
    assert capacity.warnings(6, 2, ROWS) == []  # 12 messages/s to a room of 6: under 50


def test_a_room_between_measured_sizes_is_judged_by_the_next_larger_one() -> None:
    (warning,) = capacity.warnings(20, 2, ROWS)  # 40 messages/s: under 50 (10), over 27 (30)
    assert "serves about 27 messages/s to a room of 30" in warning


def test_a_room_past_the_largest_measured_shares_out_its_deliveries() -> None:
    assert capacity.warnings(60, 0.2, ROWS) == []  # 12 messages/s x 60 = 720 deliveries/s
    (warning,) = capacity.warnings(60, 0.5, ROWS)  # 30 messages/s: 810 / 60 = 13.5
    assert "serves about 14 messages/s to a room of 60" in warning


def test_no_measurement_means_no_guess() -> None:
    assert capacity.warnings(30, 4, None) == []


def test_the_warning_is_printed_before_the_drill_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    measured = tmp_path / "capacity.json"
    measured.write_text(json.dumps({"rows": ROWS}))
    monkeypatch.setattr(capacity, "MEASURED", measured)
    monkeypatch.setattr(capacity, "MEASURED_HERE", tmp_path / "not-measured-here.json")
    StateDir(tmp_path).write(
        {
            "awsEndpointUrl": "http://127.0.0.1:9",
            "frontDoorUrl": "http://127.0.0.1:9",
            "regions": {region: {"pid": pid} for pid, region in enumerate(REGIONS, 1)},
        }
    )
    args = ["--state-dir", str(tmp_path), "--mode", "outage", "--clients", "30", "--rate", "4", "--dry-run"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "warning: 30 clients x 4 messages/s" in out
    assert out.index("warning:") < out.index("dry run: nothing changed")

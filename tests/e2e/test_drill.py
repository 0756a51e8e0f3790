"""`make drill` against the local stack, in both modes: nothing lost, nothing shown twice, the
region restored, and a timeline in a sensible order."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from localcloud.cloudformation import ROOT
from tests.e2e.chat import NEAR_LONDON, NEAR_NEW_YORK

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("mode", ["invert", "outage"])
def test_a_drill_loses_nothing_and_restores_the_region(
    stack: dict[str, Any], tmp_path: Path, mode: str
) -> None:
    output = tmp_path / f"drill-{mode}.json"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "drill",
            "--stack",
            str(Path(stack["stateDir"]) / "stack.json"),
            "--region",
            NEAR_LONDON,
            "--mode",
            mode,
            "--hold",
            "3",
            "--warmup",
            "1",
            "--cooldown",
            "1",
            "--clients",
            "4",
            "--rate",
            "4",
            "--probe-interval",
            "0.2",
            "--output",
            str(output),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    report = json.loads(output.read_text())

    assert report["mode"] == mode
    assert report["region"] == NEAR_LONDON
    assert report["sent"] > 0
    assert report["acked"] == report["sent"]
    assert report["lost"] == 0
    assert report["duplicated"] == 0
    assert report["restored"] is True
    assert report["verdict"] == "PASS", report["failures"]
    assert report["failures"] == []
    assert report["unacked"] == 0
    assert report["delivered_to_every_client"] == report["acked"]
    order = {event["event"]: event["t"] for event in report["timeline"]}
    assert order["took_out"] <= order["detected"] <= order["restore"] < order["recovered"]
    assert order["took_out"] <= order["rerouted"]
    assert report["detect_seconds"] >= 0
    if mode == "outage":  # the clients of the dead region had a gap, and came back
        londoners = [c for c in report["clients"] if c["location"] == "london"]
        assert all(c["regions"][-1] in (NEAR_NEW_YORK, NEAR_LONDON) for c in londoners)
        assert any(c["without_service_seconds"] > 0 for c in londoners)
    assert output.with_suffix(".png").exists()
    assert "lost                      0" in completed.stdout

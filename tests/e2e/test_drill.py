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
            "--state-dir",
            stack["stateDir"],
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
            "--idle-clients",
            "2",
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
    # Seen in this order; a busy machine may see the failure or the move only after the restore began.
    assert order["took_out"] <= order["detected"] < order["recovered"]
    assert order["took_out"] <= order["restore"] < order["recovered"]
    assert order["took_out"] <= order["rerouted"]
    assert report["detect_seconds"] >= 0
    idle = report["idle"]
    assert idle["clients"] == 2
    assert all(c["sent"] == 0 for c in report["clients"] if c["idle"])  # they hold every message too
    if mode == "outage":  # the clients of the dead region had a gap, and came back
        londoners = [c for c in report["clients"] if c["location"] == "london"]
        assert all(c["regions"][-1] in (NEAR_NEW_YORK, NEAR_LONDON) for c in londoners)
        assert any(c["without_service_seconds"] > 0 for c in londoners)
        # the idle one there noticed (its socket closed with the region) well within 2 minutes,
        # and was back, caught up, with every acknowledged message (delivered_to_every_client)
        assert idle["kept_their_connection"] == 1
        assert idle["noticed_seconds"]["p99"] <= idle["target_seconds"]
        assert idle["back_seconds"]["p99"] is not None
        assert idle["never_back"] == 0
    else:  # an inverted check moves new connections only: the region still serves the idle ones
        assert idle["kept_their_connection"] == 2
    assert output.with_suffix(".png").exists()
    assert "lost                      0" in completed.stdout

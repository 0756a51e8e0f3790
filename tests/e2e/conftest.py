"""The local two-region stack, started once per test session with short intervals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEALTH_INTERVAL = 0.25
FAILURE_THRESHOLD = 2


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    state = tmp_path_factory.mktemp("local-stack")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "localcloud",
            "--port",
            "0",
            "--state-dir",
            str(state),
            "--health-interval",
            str(HEALTH_INTERVAL),
            "--failure-threshold",
            str(FAILURE_THRESHOLD),
            "--replication-delay",
            "0.2",
            "--poll-interval",
            "0.05",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    output = []
    for line in process.stdout:  # the stack prints READY once stack.json is written
        output.append(line)
        if line.startswith("READY "):
            break
    else:
        process.wait()
        pytest.fail("the local stack did not start:\n" + "".join(output))
    info: dict[str, Any] = json.loads((state / "stack.json").read_text())
    info["stateDir"] = str(state)
    yield info
    process.send_signal(signal.SIGINT)
    remaining = process.communicate(timeout=30)[0]
    assert process.returncode == 0, remaining
    assert not (state / "stack.json").exists()

"""Start the local two-region stack for a test layer (end-to-end, browser) and stop it after.

One place for it: the command line with short intervals, waiting for READY, and draining the
stack's output to a file (a full pipe would block the stack's logging, and so the stack)."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEALTH_INTERVAL = 0.25
FAILURE_THRESHOLD = 2
FAST = [
    "--health-interval",
    str(HEALTH_INTERVAL),
    "--failure-threshold",
    str(FAILURE_THRESHOLD),
    "--replication-delay",
    "0.2",
    "--poll-interval",
    "0.05",
]


def _copy_lines(source: IO[str], target: Path) -> None:
    with target.open("a") as sink:
        for line in source:
            sink.write(line)
            sink.flush()


@contextlib.contextmanager
def running_stack(state: Path) -> Iterator[dict[str, Any]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "localcloud", "--port", "0", "--state-dir", str(state), *FAST],
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
    drain = threading.Thread(target=_copy_lines, args=(process.stdout, state / "stack.log"), daemon=True)
    drain.start()
    info: dict[str, Any] = json.loads((state / "stack.json").read_text())
    info["stateDir"] = str(state)
    try:
        yield info
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
        drain.join(timeout=5)
    assert process.returncode == 0, (state / "stack.log").read_text()[-4000:]
    assert not (state / "stack.json").exists()

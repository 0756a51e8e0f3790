"""What every benchmark shares: percentiles, the machine, results files, the local stack."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stack_definition.local_stack import running_stack
from stack_definition.repository import ROOT

RESULTS = ROOT / "bench" / "results"  # the published figures: only `--publish` writes here
SCRATCH = ROOT / ".local" / "bench"  # every other run's (git ignores .local/)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/max/mean in milliseconds of durations given in seconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50": round(percentile(ms, 50), 2),
        "p90": round(percentile(ms, 90), 2),
        "p99": round(percentile(ms, 99), 2),
        "max": round(max(ms), 2),
        "mean": round(statistics.fmean(ms), 2),
    }


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_result(name: str, result: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    result = {"benchmark": name, "measuredAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())} | result
    result.setdefault("machine", machine())
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(path)
    return path


# The benchmarks measure the chat, not the limits: their few senders each send far more than a
# person may (the template's defaults: 5 messages/s, bursts of 10, 5 connections), and their guests
# all sign in from this one address and share rooms (10 guest sign-ins a minute per address, bursts
# of 20; 10 guest messages a second per room, bursts of 20).
UNLIMITED = (
    "MessagesPerSecond=1000",
    "MessageBurst=1000",
    "MaxConnectionsPerUser=1000",
    "GuestSignInsPerMinute=100000",
    "GuestSignInBurst=100000",
    "GuestMessagesPerSecondPerRoom=1000",
    "GuestRoomBurst=1000",
)


@contextmanager
def local_stack(
    *,
    replication_delay: float,
    poll_interval: float = 0.05,
    health_interval: float = 600.0,
    env: dict[str, str] | None = None,
) -> Iterator[dict[str, Any]]:
    """The local stack on free ports (stack_definition.local_stack), with how long it took to start.

    The health interval is long by default: the front door's deep probes write to the tables and
    would both add load and pollute the AWS call counts (no benchmark goes through the front door).
    """
    options = [
        *("--health-interval", str(health_interval)),
        *("--failure-threshold", "2"),
        *("--replication-delay", str(replication_delay)),
        *("--poll-interval", str(poll_interval)),
        *("--parameter-overrides", *UNLIMITED),
    ]
    started = time.perf_counter()
    with running_stack(Path(tempfile.mkdtemp(prefix="bench-stack-")), options, env=env) as info:
        yield {**info, "benchStartupSeconds": round(time.perf_counter() - started, 2)}


@contextmanager
def slow_endpoint(delay: float) -> Iterator[str]:
    """A management-API double in its own process (so it does not share our GIL): answers every
    request 200 after `delay` seconds. Yields its base URL (with the `/prod` stage)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.endpoint", "--delay", str(delay)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("PORT "):
        process.kill()
        raise RuntimeError(f"the endpoint double did not start: {line!r}")
    try:
        yield f"http://127.0.0.1:{int(line.split()[1])}/prod"
    finally:
        process.terminate()
        process.wait(timeout=10)

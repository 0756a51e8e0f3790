"""What every benchmark shares: percentiles, the machine, results files, the local stack."""

from __future__ import annotations

import functools
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stack_definition.local_stack import running_stack
from stack_definition.repository import ROOT
from stack_definition.template import MESSAGES, load_cached, region_names, table_names

RESULTS = ROOT / "bench" / "results"  # the published figures: only `--publish` writes here
SCRATCH = ROOT / ".local" / "bench"  # every other run's (git ignores .local/)


@dataclass
class StackRegions:
    """The regions a benchmark's local stack runs (ReplicaRegions) and the one it measures in.
    `python -m bench --regions ... --region ...` sets them; capacity and latency read them."""

    running: tuple[str, ...] = ()  # none given: the template's ReplicaRegions
    measured: str = ""  # none given: the first of them

    def stack(self) -> tuple[str, ...]:
        return self.running or region_names()

    def region(self) -> str:
        return self.measured or self.stack()[0]


CHOSEN = StackRegions()


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
    regions: Sequence[str] = (),
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
        *(("--regions", ",".join(regions)) if regions else ()),
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


def keeper_beats(info: dict[str, Any]) -> dict[str, int]:
    """Each region's newest presence beat (`beatAt` of its own item in its own messages table),
    read from the bench's process straight from the local AWS endpoint, so it adds nothing to the
    regions' call counts. The keepers beat on their own clock (a Query and a PutItem every 15 s
    per region, chat/presence_keeper.py): their calls are counted apart, but a beat may push a
    region change's frames, so a counted window in which any of these changed is left out."""
    table = table_names(load_cached())[MESSAGES]
    beats: dict[str, int] = {}
    for region in info["regions"]:
        client = _local_dynamodb(info["awsEndpointUrl"], region)
        key = {"pk": {"S": "presence-beats"}, "sk": {"S": region}}
        item = client.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item", {})
        beats[region] = int(item.get("beatAt", {}).get("N", "0"))
    return beats


def membership_item(info: dict[str, Any], room: str, user_id: str) -> dict[str, Any] | None:
    """The user's presence membership of `room` through the first region, as that region's
    messages table holds it (None: no membership), read as keeper_beats reads, uncounted."""
    region = region_names()[0]
    key = {"pk": {"S": f"presence#{room}"}, "sk": {"S": f"{user_id}#{region}"}}
    client = _local_dynamodb(info["awsEndpointUrl"], region)
    item: dict[str, Any] | None = client.get_item(
        TableName=table_names(load_cached())[MESSAGES], Key=key, ConsistentRead=True
    ).get("Item")
    return item


@functools.cache
def _local_dynamodb(endpoint: str, region: str) -> Any:
    import boto3

    return boto3.client(
        "dynamodb",
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - the local endpoint ignores them
    )

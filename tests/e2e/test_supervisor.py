"""`make local` under its own faults: a second start, a taken port, a child process that dies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from localcloud.stack.cli import taken_ports
from localcloud.stack.supervisor import ports_per_stack
from stack_definition.local_stack import QUICK
from stack_definition.repository import ROOT
from stack_definition.template import load_cached
from tests.e2e.chat import NEAR_NEW_YORK

PORTS_PER_STACK = ports_per_stack(load_cached())

pytestmark = pytest.mark.e2e


def make_local(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "localcloud", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def snapshot(state: Path) -> dict[str, str]:
    """The state files a second start could clobber; not the stream checkpoints, which the running
    regions move on their own whenever a replicated write arrives."""
    return {
        path.name: path.read_text()
        for path in state.glob("*.json")
        if not path.name.endswith("stream-checkpoint.json")
    }


def test_a_second_start_in_the_same_state_dir_leaves_the_running_stack_untouched(
    stack: dict[str, Any],
) -> None:
    state = Path(stack["stateDir"])
    before = snapshot(state)
    assert "stack.json" in before
    port = stack["frontDoorUrl"].rsplit(":", 1)[1]

    second = make_local("--state-dir", str(state), "--port", port)

    assert second.returncode != 0
    assert f"pid {stack['pid']}" in second.stderr, second.stderr
    assert snapshot(state) == before

    async def still_serving() -> int:
        async with aiohttp.ClientSession() as session, session.get(stack["statusUrl"]) as response:
            return response.status

    assert asyncio.run(still_serving()) == 200


@contextlib.contextmanager
def taken(port: int) -> Iterator[None]:
    """Hold `port` (unless something else already does)."""
    with socket.socket() as sock:
        with contextlib.suppress(OSError):
            sock.bind(("127.0.0.1", port))
            sock.listen()
        assert port in taken_ports("127.0.0.1", port)
        yield


def test_a_taken_port_is_refused_with_a_hint_that_names_free_ports(tmp_path: Path) -> None:
    with taken(9700):
        refused = make_local("--port", "9700", "--state-dir", str(tmp_path))
        assert refused.returncode != 0
        assert "9700" in refused.stderr
        hint = re.search(r"--port (\d+)", refused.stderr)
        assert hint is not None, refused.stderr
        suggested = int(hint.group(1))
        if suggested != 0:  # 0: any free ports
            assert 9700 not in range(suggested, suggested + PORTS_PER_STACK)
            assert taken_ports("127.0.0.1", suggested) == []
    assert not (tmp_path / "stack.json").exists()


def stack_file(state: Path) -> dict[str, Any]:
    info: dict[str, Any] = json.loads((state / "stack.json").read_text())
    return info


def test_a_region_process_that_dies_is_reported_and_started_again_on_its_ports(stack: dict[str, Any]) -> None:
    state = Path(stack["stateDir"])
    region = stack_file(state)["regions"][NEAR_NEW_YORK]
    os.kill(region["pid"], signal.SIGKILL)

    deadline = time.monotonic() + 60
    while stack_file(state)["regions"][NEAR_NEW_YORK]["pid"] in (region["pid"], None):
        assert time.monotonic() < deadline, f"the supervisor never started {NEAR_NEW_YORK} again"
        time.sleep(0.1)

    async def health() -> int:
        async with aiohttp.ClientSession() as session, session.get(f"{region['httpUrl']}/health") as response:
            return response.status

    assert asyncio.run(health()) == 200  # the same URL: it came back on its ports
    said = (state / "stack.log").read_text()
    assert f"{NEAR_NEW_YORK}'s process (pid {region['pid']}) was killed by SIGKILL" in said


def test_when_the_aws_endpoint_dies_the_stack_says_why_and_stops_everything(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "localcloud", "--port", "0", "--state-dir", str(tmp_path), *QUICK],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert any(line.startswith("READY ") for line in process.stdout), "the stack did not start"
        info = stack_file(tmp_path)
        os.kill(info["awsEndpointPid"], signal.SIGKILL)
        assert process.wait(timeout=60) == 1
        said = process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert f"AWS endpoint (pid {info['awsEndpointPid']}) was killed by SIGKILL" in said
    assert not (tmp_path / "stack.json").exists()
    for region in info["regions"].values():
        assert not Path(f"/proc/{region['pid']}").exists(), "a region's process outlived the stack"

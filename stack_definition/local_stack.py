"""A local stack for a test, a drill or a benchmark: `python -m localcloud` on free ports in a
child process, for the length of a `with` block.

It waits for the stack's READY line, drains the stack's output to `<state>/stack.log` (a full pipe
would block the stack's logging, and so the stack), and stops it with Ctrl-C after."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from stack_definition.repository import ROOT
from stack_definition.state import StateDir

# Intervals short enough that a test sees a region fail over, and replication arrive, in seconds.
QUICK = (
    "--health-interval",
    "0.25",
    "--failure-threshold",
    "2",
    "--replication-delay",
    "0.2",
    "--poll-interval",
    "0.05",
)


class StackFailed(RuntimeError):
    """The local stack did not start, or did not stop cleanly."""


def _copy_lines(source: IO[str], target: Path) -> None:
    with target.open("a") as sink:
        for line in source:
            sink.write(line)
            sink.flush()


@contextlib.contextmanager
def running_stack(
    state_dir: Path, options: Sequence[str] = (), env: Mapping[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """The running stack's `stack.json` (with `stateDir` added); `options` are `make local` ARGS."""
    state = StateDir(state_dir)
    process = subprocess.Popen(
        [sys.executable, "-m", "localcloud", "--port", "0", "--state-dir", str(state_dir), *options],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    output = []
    for line in process.stdout or ():  # the stack prints READY once stack.json is written
        output.append(line)
        if line.startswith("READY "):
            break
    else:
        process.wait()
        raise StackFailed("the local stack did not start:\n" + "".join(output))
    log = state_dir / "stack.log"
    drain = threading.Thread(target=_copy_lines, args=(process.stdout, log), daemon=True)
    drain.start()
    info = {**state.read(), "stateDir": str(state_dir)}
    try:
        yield info
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        drain.join(timeout=5)
    if process.returncode != 0 or state.stack_file.exists():
        raise StackFailed(
            f"the local stack did not stop cleanly ({process.returncode}):\n{log.read_text()[-4000:]}"
        )

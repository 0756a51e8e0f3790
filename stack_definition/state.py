"""The local stack's state directory (`.local/` by default): `stack.json`, which tells scripts,
tests and tools where the running stack is, the lock that makes the directory one stack's,
each part's log, and the event source mappings' checkpoints."""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class StackRunning(Exception):
    """Another live local stack owns this state directory."""


@dataclass(frozen=True)
class StateDir:
    root: Path

    @property
    def stack_file(self) -> Path:
        return self.root / "stack.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def checkpoint(self, name: str) -> Path:
        return self.root / f"{name}-checkpoint.json"

    # ------------------------------------------------------------------ stack.json
    def read(self) -> dict[str, Any]:
        """The running stack's endpoints; OSError or ValueError when there is none (yet)."""
        info: dict[str, Any] = json.loads(self.stack_file.read_text())
        return info

    def write(self, info: Mapping[str, Any]) -> None:
        """Whole or not at all: a reader never sees half a file."""
        tmp = self.stack_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=2) + "\n")
        tmp.replace(self.stack_file)

    def update_pids(self, pids: Mapping[str, int | None]) -> None:
        """Record each region's current process (a restart or a drill's outage changes it)."""
        with contextlib.suppress(OSError, ValueError):
            info = self.read()
            for region, pid in pids.items():
                info["regions"][region]["pid"] = pid
            self.write(info)

    def remove(self) -> None:
        self.stack_file.unlink(missing_ok=True)

    def reset(self) -> None:
        """Before a start: no stack.json yet, and no checkpoints (a new moto holds new streams)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.remove()
        for checkpoint in self.root.glob("*-checkpoint.json"):
            checkpoint.unlink()

    # ------------------------------------------------------------------ the lock
    @contextlib.contextmanager
    def claim(self) -> Iterator[None]:
        """Hold the directory for this stack's life, or raise StackRunning before touching it.

        An exclusive lock, not the pid in stack.json: the kernel drops it when its holder dies,
        however it dies, and it covers the start-up seconds before stack.json exists."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / "stack.lock").open("w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                try:
                    running = self.read()
                    owner = f" (pid {running['pid']}, front door {running['frontDoorUrl']})"
                except (OSError, ValueError, KeyError, TypeError):
                    owner = " (still starting)"
                raise StackRunning(
                    f"a local stack is already running with state in {self.root}{owner}: "
                    "stop it (Ctrl-C) or give this one another --state-dir"
                ) from None
            yield

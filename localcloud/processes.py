"""The local stack's processes: the supervisor starts each child with `spawn` and waits for its
ready line; each child answers with `announce_ready` and ends with the supervisor
(`parent_gone`), however the supervisor ends. And the sockets they all serve on."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from stack_definition.repository import ROOT


def spawn(module: str, args: list[str], log_file: IO[str]) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start `python -m module` and wait for the JSON line it writes on its ready pipe."""
    read_fd, write_fd = os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args, "--ready-fd", str(write_fd)],
        cwd=ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        pass_fds=(write_fd,),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        line = pipe.readline()
    if not line:
        process.wait()
        raise RuntimeError(f"{module} exited ({process.returncode}) before it was ready: see {log_file.name}")
    ready: dict[str, Any] = json.loads(line)
    return process, ready


def child_arguments(description: str) -> argparse.ArgumentParser:
    """The options every child takes: where to bind, and the pipe its ready line goes to."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--ready-fd", type=int, default=None)
    return parser


def announce_ready(ready_fd: int | None, ready: dict[str, Any]) -> None:
    """Tell the supervisor this child serves now, and where."""
    if ready_fd is not None:
        with os.fdopen(ready_fd, "w") as pipe:
            pipe.write(json.dumps({**ready, "pid": os.getpid()}) + "\n")


async def parent_gone() -> None:
    """Return once the process that started this one has ended (it may not have said goodbye)."""
    parent = os.getppid()
    while os.getppid() == parent:
        await asyncio.sleep(1)


def exit_reason(process: subprocess.Popen[bytes], log_file: Path) -> str:
    """How a child ended, and the last line it logged (usually the error)."""
    code = process.returncode
    how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
    try:
        last = next((line for line in reversed(log_file.read_text().splitlines()) if line.strip()), "")
    except OSError:
        last = ""
    return f"{how}" + (f" (last in {log_file}: {last.strip()[:300]})" if last else f" (see {log_file})")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free one), so that a part knows its URL before it serves."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    return sock


async def serve(app: web.Application, sock: socket.socket) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner

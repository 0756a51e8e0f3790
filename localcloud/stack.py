"""`make local`: the whole two-region system on this machine.

Starts the AWS endpoint (moto), one gateway process per region, replication between the
regions' message tables and the front door; writes the endpoints to `.local/stack.json`; stops
everything on Ctrl-C. Control endpoints on the front door stop and start a region's process and
pause replication, for drills and tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import fcntl
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from localcloud import provision
from localcloud.frontdoor import LATENCY_MS, FrontDoor, RegionHealth
from localcloud.template import ROOT, load

log = logging.getLogger("stack")
REGIONS = ("us-east-1", "eu-west-2")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make local ARGS=...",
        description="Run resilient-chat's two regions, replication, health checks and failover on this "
        "machine, with the real handlers. Ctrl-C stops everything.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address every part binds to")
    parser.add_argument(
        "--port",
        type=int,
        default=8700,
        help="front door port; the AWS endpoint and the regions take the next five (0: pick free ports)",
    )
    parser.add_argument(
        "--replication-delay", type=float, default=1.0, help="seconds before a write reaches the other region"
    )
    parser.add_argument(
        "--health-interval",
        type=float,
        default=2.0,
        help="seconds between health probes of each region (Route 53: 10 or 30)",
    )
    parser.add_argument(
        "--failure-threshold",
        type=int,
        default=2,
        help="consecutive failed (or passed) probes that flip a region's health",
    )
    parser.add_argument(
        "--location",
        default="us-east-1",
        choices=sorted(LATENCY_MS),
        help="simulated client location: new clients go to the nearest healthy region",
    )
    parser.add_argument(
        "--poll-interval", type=float, default=0.1, help="seconds between reads of an idle table stream"
    )
    parser.add_argument(
        "--state-dir", default=str(ROOT / ".local"), help="where stack.json, logs and stream checkpoints go"
    )
    parser.add_argument(
        "--domain", default="chat.local", help="the hosted zone's domain in the local Route 53"
    )
    args = parser.parse_args(argv)
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        parser.error("the local stack binds loopback addresses only")
    if args.failure_threshold < 1 or args.health_interval <= 0:
        parser.error("--failure-threshold must be at least 1 and --health-interval positive")
    return args


def _port(base: int, offset: int) -> int:
    return 0 if base == 0 else base + offset


PORTS_PER_STACK = 6  # the front door, the AWS endpoint, and HTTP and WebSocket per region


LOGS = {"AWS endpoint": "aws.log", "replication": "replication.log"}  # beside <region>.log
MAX_RESTARTS, CRASH_WINDOW = 3, 60.0  # a gateway that dies more often than this is not transient


def exit_reason(process: subprocess.Popen[bytes], log_file: Path) -> str:
    """How a child ended, and the last line it logged (usually the error)."""
    code = process.returncode
    how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
    try:
        last = next((line for line in reversed(log_file.read_text().splitlines()) if line.strip()), "")
    except OSError:
        last = ""
    return f"{how}" + (f" (last in {log_file}: {last.strip()[:300]})" if last else f" (see {log_file})")


class StackRunning(Exception):
    """Another live local stack owns this state directory."""


@contextlib.contextmanager
def claim_state_dir(state: Path) -> Iterator[None]:
    """Hold the state directory for this stack's life, or raise StackRunning before touching it.

    An exclusive lock, not the pid in stack.json: the kernel drops it when its holder dies,
    however it dies, and it covers the start-up seconds before stack.json exists."""
    state.mkdir(parents=True, exist_ok=True)
    with (state / "stack.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                running = json.loads((state / "stack.json").read_text())
                owner = f" (pid {running['pid']}, front door {running['frontDoorUrl']})"
            except (OSError, ValueError, KeyError, TypeError):
                owner = " (still starting)"
            raise StackRunning(
                f"a local stack is already running with state in {state}{owner}: "
                "stop it (Ctrl-C) or give this one another --state-dir"
            ) from None
        yield


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def taken_ports(host: str, base: int) -> list[int]:
    """The ports of a stack based at `base` that something else holds now."""
    return [port for port in range(base, base + PORTS_PER_STACK) if not _bindable(host, port)]


def free_base_port(host: str, taken_base: int) -> int:
    """A --port whose ports are all free now, away from `taken_base`; 0 (any free ports) if none."""
    for base in range(taken_base + 100, min(taken_base + 2000, 65536 - PORTS_PER_STACK), 100):
        if not taken_ports(host, base):
            return base
    return 0


def port_hint(host: str, base: int) -> str:
    suggested = free_base_port(host, base) if base else 0
    if suggested:
        return f"choose other ports: make local ARGS='--port {suggested}' (or --port 0 for any free ones)"
    return "choose other ports: make local ARGS='--port 0' (any free ones)"


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


@dataclass
class RegionProcess:
    region: str
    http_port: int
    ws_port: int
    process: subprocess.Popen[bytes] | None = None
    stage: str = "prod"
    wanted: bool = True  # False while stopped on purpose (a drill's outage): not a crash
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    crashes: list[float] = field(default_factory=list)


class Stack:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.state = Path(args.state_dir)
        self.logs = self.state / "logs"
        self.template = load()
        self.aws: subprocess.Popen[bytes] | None = None
        self.aws_endpoint = ""
        self.regions: dict[str, RegionProcess] = {}
        self.replication: subprocess.Popen[bytes] | None = None
        self.replication_url = ""
        self.frontdoor = FrontDoor(
            interval=args.health_interval,
            failure_threshold=args.failure_threshold,
            location=args.location,
            frontend=ROOT / "frontend",
        )
        self.frontdoor.controls = {"regions": self.control_region, "replication": self.control_replication}
        self.frontdoor.extra_status = self.extra_status
        self.frontdoor_url = ""
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ start
    async def start(self) -> dict[str, Any]:
        started = time.perf_counter()
        self.logs.mkdir(parents=True, exist_ok=True)
        (self.state / "stack.json").unlink(missing_ok=True)
        for checkpoint in self.state.glob("*.stream-checkpoint.json"):
            checkpoint.unlink()  # a new moto holds new streams
        host, base = self.args.host, self.args.port
        self._runner = web.AppRunner(self.frontdoor.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, _port(base, 0))
        await site.start()
        fd_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.frontdoor_url = f"http://{host}:{fd_port}"

        aws_log = (self.logs / LOGS["AWS endpoint"]).open("a")
        self.aws, ready = await asyncio.to_thread(
            spawn, "localcloud.aws", ["--host", host, "--port", str(_port(base, 1))], aws_log
        )
        self.aws_endpoint = f"http://{host}:{ready['port']}"
        for index, region in enumerate(REGIONS):
            self.regions[region] = RegionProcess(
                region, _port(base, 2 + 2 * index), _port(base, 3 + 2 * index)
            )
        await asyncio.gather(*(self.start_region(region) for region in REGIONS))

        routing = await asyncio.to_thread(
            provision.create_routing,
            self.template,
            self.aws_endpoint,
            self.args.domain,
            [provision.RegionEndpoint(r, host, p.http_port) for r, p in self.regions.items()],
            self.args.failure_threshold,
        )
        self.frontdoor.configure(
            provision.client("route53", self.aws_endpoint, "us-east-1"),
            {
                r: RegionHealth(r, self.http_url(r), self.ws_url(r), routing["healthChecks"][r])
                for r in REGIONS
            },
        )
        table = provision.table_names(self.template)[provision.MESSAGES]
        self.replication, ready = await asyncio.to_thread(
            spawn,
            "localcloud.replication",
            [
                "--aws-endpoint",
                self.aws_endpoint,
                "--table",
                table,
                "--regions",
                *REGIONS,
                "--delay",
                str(self.args.replication_delay),
                "--host",
                host,
            ],
            (self.logs / LOGS["replication"]).open("a"),
        )
        self.replication_url = f"http://{host}:{ready['port']}"
        self._tasks.append(asyncio.create_task(self.frontdoor.probe_forever()))
        info = self.describe(routing, time.perf_counter() - started)
        self.frontdoor.config = {
            "apiUrl": self.frontdoor_url,
            "websocketUrl": self.frontdoor_url.replace("http", "ws", 1),
            "regions": {r: {"httpUrl": self.http_url(r), "websocketUrl": self.ws_url(r)} for r in REGIONS},
            "statusUrl": f"{self.frontdoor_url}/_frontdoor/status",
            "local": True,
        }
        path = self.state / "stack.json"
        path.with_suffix(".tmp").write_text(json.dumps(info, indent=2) + "\n")
        path.with_suffix(".tmp").replace(path)
        return info

    def http_url(self, region: str) -> str:
        return f"http://{self.args.host}:{self.regions[region].http_port}"

    def ws_url(self, region: str) -> str:
        process = self.regions[region]
        return f"ws://{self.args.host}:{process.ws_port}/{process.stage}"

    async def start_region(self, region: str) -> None:
        process = self.regions[region]
        async with process.lock:
            process.wanted = True
            if process.process is None or process.process.poll() is not None:
                await self._spawn_region(process)

    async def _spawn_region(self, process: RegionProcess) -> None:
        region = process.region
        log_file = (self.logs / f"{region}.log").open("a")
        process.process, ready = await asyncio.to_thread(
            spawn,
            "localcloud.gateway",
            [
                "--region",
                region,
                "--aws-endpoint",
                self.aws_endpoint,
                "--host",
                self.args.host,
                "--http-port",
                str(process.http_port),
                "--ws-port",
                str(process.ws_port),
                "--state-dir",
                str(self.state),
                "--poll-interval",
                str(self.args.poll_interval),
                "--allowed-origin",
                self.frontdoor_url,
            ],
            log_file,
        )
        # A restarted region comes back on the same ports, as an API keeps its hostname.
        process.http_port, process.ws_port, process.stage = ready["http"], ready["ws"], ready["stage"]

    async def stop_region(self, region: str) -> None:
        async with self.regions[region].lock:
            self.regions[region].wanted = False
            process = self.regions[region].process
            if process is not None and process.poll() is None:
                process.kill()  # an outage, not a graceful shutdown
                await asyncio.to_thread(process.wait)

    # ------------------------------------------------------------------ supervision
    async def supervise(self, interval: float = 0.2) -> str:
        """Watch every child process; return why the stack must stop.

        A region's gateway that dies unasked is started again on its ports, and its stream
        poller resumes from its checkpoint; one that keeps dying, or any other part dying
        (the AWS endpoint holds every table in memory, replication its place in both streams),
        stops the whole stack."""
        while True:
            await asyncio.sleep(interval)
            for name, part in (("AWS endpoint", self.aws), ("replication", self.replication)):
                if part is not None and part.poll() is not None:
                    return f"the {name} (pid {part.pid}) {exit_reason(part, self.logs / LOGS[name])}"
            for region, process in self.regions.items():
                async with process.lock:
                    child = process.process
                    if not process.wanted or child is None or child.poll() is None:
                        continue
                    ended = exit_reason(child, self.logs / f"{region}.log")
                    why = f"{region}'s gateway (pid {child.pid}) {ended}"
                    now = time.monotonic()
                    process.crashes = [t for t in process.crashes if now - t < CRASH_WINDOW] + [now]
                    if len(process.crashes) > MAX_RESTARTS:
                        return f"{why}, {len(process.crashes)} times in {CRASH_WINDOW:.0f} s"
                    log.warning("%s: starting it again", why)
                    try:
                        await self._spawn_region(process)
                    except (OSError, RuntimeError) as error:
                        return f"{why}, and could not start again: {error}"
                self._rewrite_pids()

    def describe(self, routing: dict[str, Any], startup_seconds: float) -> dict[str, Any]:
        return {
            "version": 1,
            "pid": os.getpid(),
            "startedAt": time.time(),
            "startupSeconds": round(startup_seconds, 2),
            "awsEndpointUrl": self.aws_endpoint,
            "awsEndpointPid": self.aws.pid if self.aws else None,
            "frontDoorUrl": self.frontdoor_url,
            "frontDoorWebsocketUrl": self.frontdoor_url.replace("http", "ws", 1),
            "statusUrl": f"{self.frontdoor_url}/_frontdoor/status",
            "domain": self.args.domain,
            "hostedZoneId": routing["hostedZoneId"],
            "regions": {
                region: {
                    "httpUrl": self.http_url(region),
                    "websocketUrl": self.ws_url(region),
                    "managementUrl": self.ws_url(region).replace("ws", "http", 1),
                    "healthCheckId": routing["healthChecks"][region],
                    "pid": process.process.pid if process.process else None,
                    "log": str(self.logs / f"{region}.log"),
                }
                for region, process in self.regions.items()
            },
            "settings": {
                "replicationDelaySeconds": self.args.replication_delay,
                "healthIntervalSeconds": self.args.health_interval,
                "failureThreshold": self.args.failure_threshold,
                "location": self.args.location,
                "pollIntervalSeconds": self.args.poll_interval,
            },
        }

    # ------------------------------------------------------------------ controls
    async def control_region(self, request: str) -> dict[str, Any]:
        body = json.loads(request)
        region, action = body["name"], body.get("action")
        if region not in self.regions or action not in ("stop", "start"):
            raise ValueError('POST /_local/regions/<region> with {"action": "stop" | "start"}')
        await (self.stop_region(region) if action == "stop" else self.start_region(region))
        process = self.regions[region].process
        running = bool(process and process.poll() is None)
        self._rewrite_pids()
        return {"region": region, "running": running, "pid": process.pid if process and running else None}

    def _rewrite_pids(self) -> None:
        path = self.state / "stack.json"
        with contextlib.suppress(OSError, ValueError):
            info = json.loads(path.read_text())
            for region, process in self.regions.items():
                alive = process.process is not None and process.process.poll() is None
                info["regions"][region]["pid"] = process.process.pid if alive and process.process else None
            path.with_suffix(".tmp").write_text(json.dumps(info, indent=2) + "\n")
            path.with_suffix(".tmp").replace(path)

    async def control_replication(self, request: str) -> dict[str, Any]:
        body = json.loads(request)
        if not self.replication_url or body.pop("name") != "messages":
            raise ValueError('POST /_local/replication/messages with {"paused": bool, "delaySeconds": n}')
        async with self.frontdoor.session.post(f"{self.replication_url}/control", json=body) as response:
            status: dict[str, Any] = await response.json()
            return status

    async def extra_status(self) -> dict[str, Any]:
        replication: dict[str, Any] | None = None
        if self.replication_url:
            with contextlib.suppress(OSError, ValueError):
                async with self.frontdoor.session.get(f"{self.replication_url}/status") as response:
                    replication = await response.json()
        return {
            "replication": replication,
            "processes": {r: bool(p.process and p.process.poll() is None) for r, p in self.regions.items()},
        }

    # ------------------------------------------------------------------ stop
    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for region in self.regions.values():
            if region.process is not None and region.process.poll() is None:
                region.process.terminate()
        for process in (self.replication, self.aws):
            if process is not None:
                process.terminate()
        for process in [r.process for r in self.regions.values()] + [self.replication, self.aws]:
            if process is not None:
                try:
                    await asyncio.to_thread(process.wait, 5)
                except subprocess.TimeoutExpired:
                    process.kill()
        if self._runner is not None:
            await self._runner.cleanup()
        (self.state / "stack.json").unlink(missing_ok=True)


def aws_cli(endpoint: str, command: str) -> str:
    """An AWS CLI command line against the local endpoint that works as pasted into any shell.

    The CLI wants a region and credentials before it sends anything; moto checks neither, so
    dummy ones do. The CLI is the one `make venv` installs, named by its path: a fresh shell
    has no `aws` on its PATH."""
    cli = Path(sys.executable).parent / "aws"
    credentials = "AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local"
    return f"{credentials} {cli} --region us-east-1 --endpoint-url {endpoint} {command}"


def banner(info: dict[str, Any]) -> str:
    lines = [
        "",
        f"resilient-chat local stack is up in {info['startupSeconds']} s",
        f"  chat page        {info['frontDoorUrl']}/",
        f"  front door       {info['frontDoorUrl']}  (HTTP API and WebSocket, routed like Route 53)",
        f"  routing status   {info['statusUrl']}",
        f"  AWS endpoint     {info['awsEndpointUrl']}  (moto: DynamoDB, Streams, Route 53)",
    ]
    for region, endpoints in info["regions"].items():
        lines.append(f"  {region:<16} {endpoints['httpUrl']}  {endpoints['websocketUrl']}")
    lines += [
        f"  endpoints in     {Path(info['regions']['us-east-1']['log']).parent.parent / 'stack.json'}",
        "  take a region out (Route 53 health check inverted; --no-inverted puts it back):",
        "    "
        + aws_cli(
            info["awsEndpointUrl"],
            "route53 update-health-check --inverted --health-check-id "
            + info["regions"]["us-east-1"]["healthCheckId"],
        ),
        "Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


def refuse(reason: str) -> int:
    print(f"cannot start the local stack: {reason}", file=sys.stderr, flush=True)
    return 1


async def run(args: argparse.Namespace) -> int:
    # Nothing in the state directory is touched before it is ours: another stack may be using it.
    try:
        with claim_state_dir(Path(args.state_dir)):
            return await run_claimed(args)
    except StackRunning as error:
        return refuse(str(error))


async def run_claimed(args: argparse.Namespace) -> int:
    taken = taken_ports(args.host, args.port) if args.port else []
    if taken:
        ports = ", ".join(str(port) for port in taken)
        return refuse(f"{args.host} port {ports} is taken\n{port_hint(args.host, args.port)}")
    stack = Stack(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        try:
            info = await stack.start()
        except OSError as error:
            if error.errno == errno.EADDRINUSE:  # taken since the check above
                return refuse(f"{error}\n{port_hint(args.host, args.port)}")
            return refuse(str(error))
        except RuntimeError as error:  # a part exited before it was ready: its log says why
            return refuse(str(error))
        print(banner(info), flush=True)
        print("READY " + str(Path(args.state_dir) / "stack.json"), flush=True)
        supervisor = asyncio.create_task(stack.supervise())
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({supervisor, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not supervisor.done():
            supervisor.cancel()
            return 0
        print(f"the local stack cannot go on: {supervisor.result()}", file=sys.stderr, flush=True)
        return 1
    finally:
        print("stopping the local stack...", flush=True)
        await stack.stop()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    sys.exit(asyncio.run(run(args)))

"""`make local`: the whole two-region system on this machine, until Ctrl-C.

The command line, the checks before anything starts (the state directory is free, the ports
are), the banner, and the run of the supervisor."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from localcloud.stack.supervisor import Supervisor, ports_per_stack
from stack_definition.repository import ROOT
from stack_definition.routing import LATENCY_MS, ROUTE53_REGION
from stack_definition.state import StackRunning, StateDir
from stack_definition.template import load_cached


def _ports_per_stack() -> int:
    return ports_per_stack(load_cached())


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
        help=f"front door port; the AWS endpoint and the regions take the next {_ports_per_stack() - 1} "
        "(0: pick free ports)",
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
        default=load_cached().regions[0],
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
    parser.add_argument(
        "--parameter-overrides",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="template parameters for both regions' stacks, as `sam deploy --parameter-overrides` "
        "(e.g. MessagesPerSecond=1000 MessageBurst=1000 for a benchmark)",
    )
    args = parser.parse_args(argv)
    try:
        args.parameter_overrides = parameter_overrides(args.parameter_overrides)
    except ValueError as error:
        parser.error(str(error))
    if not args.host.startswith("127.") and args.host not in ("localhost", "::1"):
        parser.error("the local stack binds loopback addresses only")
    if args.failure_threshold < 1 or args.health_interval <= 0:
        parser.error("--failure-threshold must be at least 1 and --health-interval positive")
    return args


def parameter_overrides(pairs: list[str]) -> dict[str, str]:
    """`NAME=VALUE` pairs of the template's own parameters."""
    known = load_cached().raw.get("Parameters", {})
    overrides = dict(pair.partition("=")[::2] for pair in pairs)
    unknown = sorted(name for name in overrides if name not in known)
    if unknown or any("=" not in pair for pair in pairs):
        raise ValueError(f"--parameter-overrides takes NAME=VALUE of the template's parameters, not {pairs}")
    return overrides


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
    return [port for port in range(base, base + _ports_per_stack()) if not _bindable(host, port)]


def free_base_port(host: str, taken_base: int) -> int:
    """A --port whose ports are all free now, away from `taken_base`; 0 (any free ports) if none."""
    for base in range(taken_base + 100, min(taken_base + 2000, 65536 - _ports_per_stack()), 100):
        if not taken_ports(host, base):
            return base
    return 0


def port_hint(host: str, base: int) -> str:
    suggested = free_base_port(host, base) if base else 0
    if suggested:
        return f"choose other ports: make local ARGS='--port {suggested}' (or --port 0 for any free ones)"
    return "choose other ports: make local ARGS='--port 0' (any free ones)"


def aws_cli(endpoint: str, command: str) -> str:
    """An AWS CLI command line against the local endpoint that works as pasted into any shell.

    The CLI wants a region and credentials before it sends anything; moto checks neither, so
    dummy ones do. The CLI is the one `make venv` installs, named by its path: a fresh shell
    has no `aws` on its PATH."""
    cli = Path(sys.executable).parent / "aws"
    credentials = "AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local"
    return f"{credentials} {cli} --region {ROUTE53_REGION} --endpoint-url {endpoint} {command}"


def control_commands(info: dict[str, Any], region: str) -> list[str]:
    """curl lines for a region's fault controls, as pasted into any shell."""
    url = f"{info['frontDoorUrl']}/_local/regions/{region}"
    bodies = [
        '{"action": "fail", "service": "dynamodb"}',
        '{"action": "fail", "service": "lambda"}',
        '{"action": "heal"}',
    ]
    return [f"curl -sH 'Content-Type: application/json' {url} -d '{body}'" for body in bodies]


def banner(info: dict[str, Any], state: StateDir) -> str:
    lines = [
        "",
        f"resilient-chat local stack is up in {info['startupSeconds']} s",
        f"  chat page        {info['frontDoorUrl']}/",
        f"  front door       {info['frontDoorUrl']}  (HTTP API and WebSocket, routed like Route 53)",
        f"  routing status   {info['statusUrl']}",
        f"  AWS endpoint     {info['awsEndpointUrl']}"
        "  (moto: DynamoDB, Streams, SQS, Secrets Manager, Route 53)",
    ]
    for region, endpoints in info["regions"].items():
        lines.append(f"  {region:<16} {endpoints['httpUrl']}  {endpoints['websocketUrl']}")
    first = next(iter(info["regions"].values()))
    lines += [
        f"  endpoints in     {state.stack_file}",
        "  take a region out (Route 53 health check inverted; --no-inverted puts it back):",
        "    "
        + aws_cli(
            info["awsEndpointUrl"],
            "route53 update-health-check --inverted --health-check-id " + first["healthCheckId"],
        ),
        "  gray failures (the region stays up; heal ends every fault of it; stop/start kill it):",
        *(f"    {line}" for line in control_commands(info, next(iter(info["regions"])))),
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
        with StateDir(Path(args.state_dir)).claim():
            return await run_claimed(args)
    except StackRunning as error:
        return refuse(str(error))


async def run_claimed(args: argparse.Namespace) -> int:
    taken = taken_ports(args.host, args.port) if args.port else []
    if taken:
        ports = ", ".join(str(port) for port in taken)
        return refuse(f"{args.host} port {ports} is taken\n{port_hint(args.host, args.port)}")
    state = StateDir(Path(args.state_dir))
    stack = Supervisor(args, load_cached(), state)
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
        print(banner(info, state), flush=True)
        print(f"READY {state.stack_file}", flush=True)
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

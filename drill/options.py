"""`make drill`'s settings."""

from __future__ import annotations

import argparse
from pathlib import Path

from chatclient.judge import ACTIVE_HEARTBEAT_MS, HEARTBEAT_MS
from drill.targets import MODES
from stack_definition.repository import ROOT
from stack_definition.template import load_cached, region_names

DESCRIPTION = """take a region out by a named fault (kill it, fail its DynamoDB or its Lambda under
open sockets, or invert its health check), measure what synthetic senders and listeners saw, and
restore exactly what was changed, even on Ctrl-C or an error."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make drill ARGS=...",
        description=DESCRIPTION,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--region", choices=region_names(), default=region_names()[0], help="the region to take out"
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="invert",
        help="invert: flip the Route 53 health check's Inverted flag (the QCon demo); "
        "kill: stop the region's process (local only); dynamodb: its DynamoDB fails under open "
        "sockets (locally the stack's fault control; in AWS an explicit IAM deny); lambda: its "
        "functions fail (locally the control; in AWS reserved concurrency 0); outage: the old "
        "name, kill locally and lambda in AWS",
    )
    parser.add_argument("--hold", type=float, default=15.0, help="seconds to keep the region out")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of traffic before taking it out")
    parser.add_argument("--cooldown", type=float, default=3.0, help="seconds of traffic after recovery")
    parser.add_argument("--clients", type=int, default=6, help="synthetic clients, spread over both regions")
    parser.add_argument("--rate", type=float, default=2.0, help="messages per second per client")
    parser.add_argument(
        "--listeners",
        "--idle-clients",
        dest="listeners",
        type=int,
        default=4,
        help="clients in the senders' room that send nothing, spread over both regions: they learn "
        "of a failing region by the heartbeat (20 s of silence in an active room); the report says "
        "how long each took to be served by a healthy region, caught up",
    )
    parser.add_argument(
        "--heartbeat",
        type=float,
        default=HEARTBEAT_MS / 1000,
        help="seconds of silence (±10%%) before a ping in a quiet room, as the chat page",
    )
    parser.add_argument(
        "--active-heartbeat",
        type=float,
        default=ACTIVE_HEARTBEAT_MS / 1000,
        help="seconds of silence (±10%%) before a ping in an active room (a message in the last 5 "
        "minutes), as the chat page; shorter only to try the rule quickly",
    )
    parser.add_argument(
        "--probe-interval", type=float, default=0.5, help="seconds between health/routing probes"
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=30.0,
        help="seconds, after the last send, for the last acks and for every client to hold every "
        "acknowledged message; every wait of that phase ends by then",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=ROOT / ".local",
        help="the local stack's state directory, as given to `make local` (local target)",
    )
    parser.add_argument(
        "--aws-domain",
        default=None,
        help="drill a real deployment with this domain (api.<domain>, ws.<domain>) instead",
    )
    parser.add_argument(
        "--stack-name",
        default=load_cached().stack_name,
        help="the deployed stacks' name in both regions (AWS): the drill acts only on their "
        "outputs and resources",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="report JSON path (default .local/drill/<time>-<region>-<mode>.json)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would change, change nothing")
    args = parser.parse_args(argv)
    positive = (args.rate, args.hold, args.heartbeat, args.active_heartbeat)
    if args.clients < 1 or args.listeners < 0 or min(positive) <= 0:
        parser.error(
            "--clients must be at least 1, --listeners at least 0; --rate, --hold and the heartbeats "
            "must be positive"
        )
    return args

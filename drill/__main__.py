"""`make drill`: take a region out by a named fault (kill it, fail its DynamoDB or its Lambda under
open sockets, or invert its health check), measure what synthetic senders and listeners saw, and
restore exactly what was changed, even on Ctrl-C or an error."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from chatclient.judge import HEARTBEAT_MS, RULE
from drill import capacity, histories, report
from drill.aws import AwsTarget
from drill.clients import SyntheticClient
from drill.targets import MODES, REGIONS, STACK_NAME, LocalTarget, Target, TargetError, fault_of
from localcloud.cloudformation import ROOT
from localcloud.state import StateDir

SETTLE_CONCURRENCY = 4  # history reads in flight at once while settling


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make drill ARGS=...",
        description=__doc__,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--region", choices=REGIONS, default=REGIONS[0], help="the region to take out")
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
        help="seconds of silence (±10%%) before a ping in a quiet room, as the chat page (an active "
        "room's heartbeat stays 20 s)",
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
        default=STACK_NAME,
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
    if args.clients < 1 or args.rate <= 0 or args.hold <= 0 or args.heartbeat <= 0 or args.listeners < 0:
        parser.error(
            "--clients must be at least 1, --listeners at least 0; --rate, --hold and --heartbeat "
            "must be positive"
        )
    return args


class Drill:
    def __init__(self, args: argparse.Namespace, target: Target, warnings: list[str] | None = None) -> None:
        self.args = args
        self.target = target
        self.events: list[dict[str, Any]] = []
        self.started = time.time()
        self.out_location = target.locations()[args.region]
        self.other = next(r for r in REGIONS if r != args.region)
        self.warnings = warnings or []

    def event(self, kind: str, **details: Any) -> None:
        self.events.append({"at": time.time(), "event": kind, **details})
        print(
            f"  [{time.time() - self.started:6.1f}s] {kind} {json.dumps(details) if details else ''}",
            flush=True,
        )

    async def watch(self, stop: asyncio.Event, clients: list[SyntheticClient], phase: dict[str, str]) -> None:
        """Health and routing as a new client sees them; progress on the terminal.

        Recovery is judged by the region's health check and its own endpoint, never by where the
        routed name sends this machine: that depends on where the operator sits."""
        last_line = 0.0
        routed_before: str | None = None
        while not stop.is_set():
            healthy = await asyncio.to_thread(self.target.healthy, self.args.region)
            routed = await asyncio.to_thread(self.target.routed_region, self.out_location)
            if phase["name"] == "warmup" and routed is not None:
                routed_before = routed
            # Until recovery, not only while the region is out: a loaded machine can make one round
            # of this loop outlast --hold, and a change first seen late is still seen.
            if phase["name"] in ("out", "restored"):
                if not healthy and not self.seen("detected"):
                    self.event("detected", region=self.args.region)
                # A move is seen only from a place the routed name sent to the drilled region.
                if routed_before == self.args.region and routed == self.other and not self.seen("rerouted"):
                    self.event("rerouted", location=self.out_location, to=routed)
            if (
                phase["name"] == "restored"
                and healthy
                and await asyncio.to_thread(self.target.serves, self.args.region)
            ):
                self.event("recovered", region=self.args.region)
                phase["name"] = "recovered"
            if time.time() - last_line >= 1.0:
                last_line = time.time()
                up = sum(c.connected for c in clients)
                print(
                    f"  [{time.time() - self.started:6.1f}s] {phase['name']:<9} {self.args.region} "
                    f"{'healthy' if healthy else 'UNHEALTHY'}; "
                    f"new clients near it go to {routed or 'no answer'}; "
                    f"sent {sum(len(c.sent) for c in clients)}, acked {sum(len(c.acked) for c in clients)}; "
                    f"clients connected {up}/{len(clients)}",
                    flush=True,
                )
            await asyncio.sleep(self.args.probe_interval)

    def seen(self, kind: str) -> bool:
        return any(e["event"] == kind for e in self.events)

    async def settle(self, clients: list[SyntheticClient], session: aiohttp.ClientSession) -> None:
        """For --settle seconds after the last send, wait for the last acks, then catch every client
        up from history until each holds every acknowledged message: replication is asynchronous,
        so a message is lost only if it never arrives. One deadline bounds every wait in here,
        however slow or stalled the stack is."""
        gate = asyncio.Semaphore(SETTLE_CONCURRENCY)  # an overloaded stack gets no extra load from us

        async def catch_up(client: SyntheticClient) -> None:
            async with gate:
                try:
                    await client.catch_up(session, self.started)
                except (aiohttp.ClientError, ConnectionError, TimeoutError) as error:
                    print(f"  catch-up of {client.name} failed: {error!r}", flush=True)

        def behind() -> list[SyntheticClient]:
            acked = {message_id for client in clients for message_id in client.acked}
            return [c for c in clients if not acked <= c.seen.keys()]

        try:
            async with asyncio.timeout(self.args.settle):
                while not all(c.outbox_empty() for c in clients):
                    await asyncio.sleep(0.2)
                while lagging := behind():
                    await asyncio.gather(*(catch_up(c) for c in lagging))
                    await asyncio.sleep(0.5)
        except TimeoutError:
            pass
        self.event(
            "settled",
            clients_behind=len(behind()),
            awaiting_ack=sum(not c.outbox_empty() for c in clients),
        )

    async def run(self) -> dict[str, Any]:
        args = self.args
        room = f"drill-{int(self.started)}"
        locations = list(self.target.locations().values())
        fault = fault_of(args.mode, self.target.name)
        timing = dataclasses.replace(RULE, heartbeat_ms=args.heartbeat * 1000)

        def client(name: str, i: int, rate: float) -> SyntheticClient:
            return SyntheticClient(
                name=name,
                location=locations[i % 2],
                room=room,
                ws_url=self.target.websocket_url(locations[i % 2]),
                http_url=self.target.http_url(locations[i % 2]),
                rate=rate,
                direct=self.target.direct_endpoints(),
                timing=timing,
            )

        clients = [client(f"sender-{i + 1}", i, args.rate) for i in range(args.clients)]
        clients += [client(f"listener-{i + 1}", i, 0.0) for i in range(args.listeners)]
        stop_sending, stop = asyncio.Event(), asyncio.Event()
        phase = {"name": "warmup"}
        undone, restored_at, took_out = False, None, time.time()
        recovery_wait = max(30.0, args.hold * 2)
        async with aiohttp.ClientSession() as session:
            tasks = [asyncio.create_task(c.run(stop, session)) for c in clients]
            senders = [asyncio.create_task(c.send_steadily(stop_sending)) for c in clients if c.rate > 0]
            watcher = asyncio.create_task(self.watch(stop, clients, phase))
            try:
                await asyncio.sleep(args.warmup)
                took_out = time.time()
                self.event("took_out", region=args.region, mode=args.mode, fault=fault)
                phase["name"] = "out"
                await asyncio.to_thread(self.target.take_out, args.region, fault)
                await asyncio.sleep(args.hold)
            finally:
                self.event("restore", region=args.region)
                undone = await asyncio.to_thread(self.target.restore)
                restored_at = time.time()
                phase["name"] = "restored"
            deadline = time.time() + recovery_wait
            while phase["name"] != "recovered" and time.time() < deadline:
                await asyncio.sleep(args.probe_interval)
            await asyncio.sleep(args.cooldown)
            stop_sending.set()
            self.event("stopped_sending")
            settled_by = time.time() + args.settle
            await self.settle(clients, session)
            compared = await histories.compare(
                session,
                self.target.direct_endpoints(),
                room,
                next((c.token for c in clients if c.token), ""),
                deadline=max(settled_by, time.time() + 5),
            )
            self.event("histories", **compared)
            stop.set()
            for task in [*tasks, *senders, watcher]:
                task.cancel()
            await asyncio.gather(*tasks, *senders, watcher, return_exceptions=True)
        return report.build(
            mode=args.mode,
            fault=fault,
            histories=compared,
            region=args.region,
            target=self.target.name,
            clients=clients,
            events=self.events,
            started=self.started,
            took_out=took_out,
            restored_at=restored_at,
            undone=undone,
            recovery_wait=recovery_wait,
            warnings=self.warnings,
            settings={
                "hold_seconds": args.hold,
                "clients": args.clients,
                "rate_per_client": args.rate,
                "listeners": args.listeners,
                "heartbeat_seconds": args.heartbeat,
                "probe_interval_seconds": args.probe_interval,
                "settle_seconds": args.settle,
            },
            ended=time.time(),
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        target: Target = (
            AwsTarget(domain=args.aws_domain, stack_name=args.stack_name, hold=args.hold)
            if args.aws_domain
            else LocalTarget(StateDir(args.state_dir))
        )
        fault = fault_of(args.mode, target.name)
        played = f"'{args.mode}'" + (f" (a {fault} fault)" if fault != args.mode else "")
        print(f"Drill against {target.name}: take {args.region} out by {played} for {args.hold} s.")
        print("It will:")
        for step in target.plan(args.region, fault):
            print(f"  - {step}")
        print("  - then restore exactly that, even on Ctrl-C or an error")
        warnings = capacity.warnings(args.clients, args.rate, target.capacity())
        for warning in warnings:
            print(f"warning: {warning}", flush=True)
        if args.dry_run:
            print("dry run: nothing changed")
            return 0
        target.prepare()
    except TargetError as error:
        print(f"drill: {error}", file=sys.stderr)
        return 2
    # SIGTERM too must restore: turn it into the KeyboardInterrupt that unwinds through `finally`.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    drill = Drill(args, target, warnings)
    try:
        result = asyncio.run(drill.run())
    except KeyboardInterrupt:
        ok = target.restore()  # idempotent: done already unless the interrupt came first
        print(f"interrupted; restored: {ok}", flush=True)
        return 130
    except TargetError as error:  # the fault could not be made: what was made is undone already
        print(f"drill: {error}; restored: {target.restore()}", file=sys.stderr)
        return 2
    output = args.output or Path(".local/drill") / (
        time.strftime("%Y%m%d-%H%M%S", time.gmtime(drill.started)) + f"-{args.region}-{args.mode}.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    picture = report.plot(result, output.with_suffix(".png"))
    print()
    print(report.summary(result))
    print(f"\nreport: {output}" + (f"\ntimeline: {picture}" if picture else ""))
    return 0 if result["verdict"] == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())

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

from chatclient.judge import RULE
from drill import capacity, histories, presence, report, timeline
from drill.aws import AwsTarget
from drill.clients import SyntheticClient
from drill.options import parse_args
from drill.targets import LocalTarget, Target, TargetError, fault_of
from stack_definition.state import StateDir

SETTLE_CONCURRENCY = 4  # history reads in flight at once while settling


class Drill:
    def __init__(
        self,
        args: argparse.Namespace,
        target: Target,
        warnings: list[str] | None = None,
        presence_deadline: float = presence.DEADLINE_AFTER_RESTORE,
    ) -> None:
        self.args = args
        self.presence_deadline = presence_deadline  # seconds after the restore
        self.target = target
        self.events: list[dict[str, Any]] = []
        self.started = time.time()
        self.out_location = target.locations()[args.region]
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
                moved = routed not in (None, self.args.region)
                if routed_before == self.args.region and moved and not self.seen("rerouted"):
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
                    await client.catch_up(session, self.started, everything=True)
                except (aiohttp.ClientError, ConnectionError, TimeoutError) as error:
                    print(f"  catch-up of {client.name} failed: {error!r}", flush=True)

        def behind() -> list[SyntheticClient]:
            """Clients without every acknowledged message, or not yet shown one of their edits or
            deletes stored (a history read shows it)."""
            acked = {message_id for client in clients for message_id in client.acked}
            return [c for c in clients if not acked <= c.seen.keys() or c.changes.outbox]

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
        timing = dataclasses.replace(
            RULE, heartbeat_ms=args.heartbeat * 1000, active_heartbeat_ms=args.active_heartbeat * 1000
        )

        def client(name: str, i: int, rate: float) -> SyntheticClient:
            return SyntheticClient(
                name=name,
                location=locations[i % len(locations)],
                room=room,
                ws_url=self.target.websocket_url(locations[i % len(locations)]),
                http_url=self.target.http_url(locations[i % len(locations)]),
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
            token = next((c.token for c in clients if c.token), "")
            compared = await histories.compare(
                session,
                self.target.direct_endpoints(),
                room,
                token,
                deadline=max(settled_by, time.time() + 5),
                clients=list(clients),
            )
            self.event("histories", **compared)
            restored = restored_at or time.time()
            present = await presence.compare(
                session,
                self.target.direct_endpoints(),
                room,
                token,
                clients,
                restored_at=restored,
                deadline=restored + self.presence_deadline,
            )
            self.event("presence", **present)
            stop.set()
            for task in [*tasks, *senders, watcher]:
                task.cancel()
            await asyncio.gather(*tasks, *senders, watcher, return_exceptions=True)
        return report.build(
            mode=args.mode,
            fault=fault,
            histories=compared,
            presence=present,
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
                "active_heartbeat_seconds": args.active_heartbeat,
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
        if args.region not in target.locations():
            raise TargetError(
                f"no region {args.region} in {target.name}: one of {', '.join(target.locations())}"
            )
        fault = fault_of(args.mode, target.name)
        played = f"'{args.mode}'" + (f" (a {fault} fault)" if fault != args.mode else "")
        steps = target.plan(args.region, fault)  # a fault the target cannot play stops here
        print(f"Drill against {target.name}: take {args.region} out by {played} for {args.hold} s.")
        print("It will:")
        for step in steps:
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
    picture = timeline.plot(result, output.with_suffix(".png"))
    print()
    print(report.summary(result))
    print(f"\nreport: {output}" + (f"\ntimeline: {picture}" if picture else ""))
    return 0 if result["verdict"] == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())

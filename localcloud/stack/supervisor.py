"""The supervisor assembles the local stack and keeps it running: the AWS endpoint (moto), one
process per region, global-table replication, Route 53's health checks and latency routing, and
the front door; it writes the endpoints to `.local/stack.json`, restarts a region's process that
dies unasked (with the faults it had), and answers the front door's control and status requests
(its `Controls`: a region's stop/start, fail/heal of its DynamoDB or Lambda, replication's pace)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from localcloud import processes
from localcloud.aws import faults, provision
from localcloud.route53.health_checks import HealthChecker, RegionHealth
from localcloud.route53.latency_routing import LatencyRouter
from localcloud.stack.frontdoor import FrontDoor, NoSuchControl
from stack_definition.repository import ROOT
from stack_definition.routing import ROUTE53_REGION
from stack_definition.state import StateDir
from stack_definition.template import MESSAGES, Template, table_names

log = logging.getLogger("stack")

AWS_LOG, REPLICATION_LOG = "aws", "replication"  # beside <region>.log
MAX_RESTARTS, CRASH_WINDOW = 3, 60.0  # a region that dies more often than this is not transient
REGION_ACTIONS = ("stop", "start", "fail", "heal")


def ports_per_stack(template: Template) -> int:
    return 2 + 2 * len(
        template.regions
    )  # the front door, the AWS endpoint, and HTTP and WebSocket per region


def port(base: int, offset: int) -> int:
    return 0 if base == 0 else base + offset


@dataclass
class RegionProcess:
    region: str
    http_port: int
    ws_port: int
    process: subprocess.Popen[bytes] | None = None
    stage: str = ""
    wanted: bool = True  # False while stopped on purpose (a drill's outage): not a crash
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    crashes: list[float] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)  # its failing services, until `heal`

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.running else None


class Supervisor:
    def __init__(self, args: argparse.Namespace, template: Template, state: StateDir) -> None:
        self.args = args
        self.template = template
        self.state = state
        self.aws: subprocess.Popen[bytes] | None = None
        self.aws_endpoint = ""
        self.regions = {
            region: RegionProcess(region, port(args.port, 2 + 2 * index), port(args.port, 3 + 2 * index))
            for index, region in enumerate(template.regions)
        }
        self.replication: subprocess.Popen[bytes] | None = None
        self.replication_url = ""
        self.frontdoor_url = ""
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ start
    async def start(self) -> dict[str, Any]:
        started = time.perf_counter()
        host, base = self.args.host, self.args.port
        self.state.reset()
        self._session = aiohttp.ClientSession()
        frontdoor_socket = processes.bind(host, port(base, 0))
        self.frontdoor_url = f"http://{host}:{frontdoor_socket.getsockname()[1]}"
        self.aws, ready = await self._spawn(
            AWS_LOG, "localcloud.aws.server", ["--host", host, "--port", str(port(base, 1))]
        )
        self.aws_endpoint = f"http://{host}:{ready['port']}"
        # Before any function runs: they read the session key on their first invocation.
        await asyncio.to_thread(provision.create_secrets, self.template, self.aws_endpoint)
        await asyncio.gather(*(self.start_region(region) for region in self.regions))
        routing = await asyncio.to_thread(
            provision.create_routing,
            self.template,
            self.aws_endpoint,
            self.args.domain,
            [provision.RegionEndpoint(r, host, p.http_port) for r, p in self.regions.items()],
            self.args.failure_threshold,
        )
        health = HealthChecker(
            provision.client("route53", self.aws_endpoint, ROUTE53_REGION),
            {
                r: RegionHealth(r, self.http_url(r), self.ws_url(r), routing["healthChecks"][r])
                for r in self.regions
            },
            interval=self.args.health_interval,
            failure_threshold=self.args.failure_threshold,
        )
        table = table_names(self.template)[MESSAGES]
        replication_args = ["--aws-endpoint", self.aws_endpoint, "--table", table, "--regions", *self.regions]
        replication_args += ["--delay", str(self.args.replication_delay), "--host", host]
        self.replication, ready = await self._spawn(
            REPLICATION_LOG, "localcloud.dynamodb.replication", replication_args
        )
        self.replication_url = f"http://{host}:{ready['port']}"
        frontdoor = FrontDoor(
            health=health,
            router=LatencyRouter(health, location=self.args.location),
            controls=self,
            frontend=ROOT / "frontend",
            config={
                "apiUrl": self.frontdoor_url,
                "websocketUrl": self.frontdoor_url.replace("http", "ws", 1),
                "regions": {
                    r: {"httpUrl": self.http_url(r), "websocketUrl": self.ws_url(r)} for r in self.regions
                },
                "statusUrl": f"{self.frontdoor_url}/_frontdoor/status",
                "local": True,
            },
            api_routes=[route for route, _ in self.template.http_routes],
        )
        self._runner = await processes.serve(frontdoor.app(), frontdoor_socket)
        self._tasks.append(asyncio.create_task(health.run()))
        info = self.describe(routing, time.perf_counter() - started)
        self.state.write(info)
        return info

    async def _spawn(
        self, log_name: str, module: str, args: list[str]
    ) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
        log_file = self.state.log(log_name).open("a")
        return await asyncio.to_thread(processes.spawn, module, args, log_file)

    def http_url(self, region: str) -> str:
        return f"http://{self.args.host}:{self.regions[region].http_port}"

    def ws_url(self, region: str) -> str:
        process = self.regions[region]
        return f"ws://{self.args.host}:{process.ws_port}/{process.stage}"

    async def start_region(self, region: str) -> None:
        process = self.regions[region]
        async with process.lock:
            process.wanted = True
            if not process.running:
                await self._spawn_region(process)

    async def _spawn_region(self, process: RegionProcess) -> None:
        args = ["--region", process.region, "--aws-endpoint", self.aws_endpoint, "--host", self.args.host]
        args += ["--http-port", str(process.http_port), "--ws-port", str(process.ws_port)]
        args += ["--state-dir", str(self.state.root), "--poll-interval", str(self.args.poll_interval)]
        args += ["--allowed-origin", self.frontdoor_url, "--faults", *process.faults]
        args += ["--parameter-overrides", *(f"{k}={v}" for k, v in self.args.parameter_overrides.items())]
        process.process, ready = await self._spawn(process.region, "localcloud.stack.region_process", args)
        # A restarted region comes back on the same ports, as an API keeps its hostname.
        process.http_port, process.ws_port, process.stage = ready["http"], ready["ws"], ready["stage"]

    async def stop_region(self, region: str) -> None:
        process = self.regions[region]
        async with process.lock:
            process.wanted = False
            if process.process is not None and process.running:
                process.process.kill()  # an outage, not a graceful shutdown
                await asyncio.to_thread(process.process.wait)

    # ------------------------------------------------------------------ supervision
    async def supervise(self, interval: float = 0.2) -> str:
        """Watch every child process; return why the stack must stop.

        A region's process that dies unasked is started again on its ports, and its event source
        mapping resumes from its checkpoint; one that keeps dying, or any other part dying (the
        AWS endpoint holds every table in memory, replication its place in both streams), stops
        the whole stack."""
        while True:
            await asyncio.sleep(interval)
            for name, part, log_name in (
                ("AWS endpoint", self.aws, AWS_LOG),
                ("replication", self.replication, REPLICATION_LOG),
            ):
                if part is not None and part.poll() is not None:
                    return (
                        f"the {name} (pid {part.pid}) {processes.exit_reason(part, self.state.log(log_name))}"
                    )
            for region, process in self.regions.items():
                async with process.lock:
                    child = process.process
                    if not process.wanted or child is None or child.poll() is None:
                        continue
                    ended = processes.exit_reason(child, self.state.log(region))
                    why = f"{region}'s process (pid {child.pid}) {ended}"
                    now = time.monotonic()
                    process.crashes = [t for t in process.crashes if now - t < CRASH_WINDOW] + [now]
                    if len(process.crashes) > MAX_RESTARTS:
                        return f"{why}, {len(process.crashes)} times in {CRASH_WINDOW:.0f} s"
                    log.warning("%s: starting it again", why)
                    try:
                        await self._spawn_region(process)
                    except (OSError, RuntimeError) as error:
                        return f"{why}, and could not start again: {error}"
                self._record_pids()

    def _record_pids(self) -> None:
        self.state.update_pids({r: p.pid for r, p in self.regions.items()})

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
                    "pid": process.pid,
                    "log": str(self.state.log(region)),
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

    # ------------------------------------------------------------------ Controls, for the front door
    async def control(self, kind: str, name: str, request: dict[str, Any]) -> dict[str, Any]:
        if kind == "regions":
            return await self._control_region(name, request)
        if kind == "replication":
            return await self._control_replication(name, request)
        raise NoSuchControl(kind)

    async def _control_region(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        action, service = request.get("action"), request.get("service")
        if region not in self.regions:
            raise ValueError(f"no region {region!r}: one of {list(self.regions)}")
        if action not in REGION_ACTIONS:
            raise ValueError(f'"action" must be one of {list(REGION_ACTIONS)}, not {action!r}')
        if action == "fail" and service not in faults.SERVICES:
            raise ValueError(f'{{"action": "fail"}} needs "service": one of {list(faults.SERVICES)}')
        process = self.regions[region]
        if action in ("stop", "start"):
            await (self.stop_region(region) if action == "stop" else self.start_region(region))
        else:
            await self.set_faults(region, [*process.faults, str(service)] if action == "fail" else [])
        self._record_pids()
        return {"region": region, "running": process.running, "pid": process.pid, "faults": process.faults}

    async def set_faults(self, region: str, services: list[str]) -> None:
        """Fail exactly these services of the region (faults.py); replication waits for a
        region whose DynamoDB fails, both ways."""
        process = self.regions[region]
        async with process.lock:
            process.faults = [service for service in faults.SERVICES if service in services]
            if process.running and self._session is not None:
                url = f"http://{self.args.host}:{process.ws_port}/_local/faults"
                try:
                    async with self._session.post(url, json={"faults": process.faults}) as answer:
                        answer.raise_for_status()
                except (OSError, aiohttp.ClientError) as error:  # it died: its restart gets them
                    log.warning("could not set %s's faults now (%s)", region, error)
        waiting = [r for r, p in self.regions.items() if "dynamodb" in p.faults]
        await self._control_replication("messages", {"failingRegions": waiting})
        log.warning("%s fails: %s", region, ", ".join(process.faults) or "nothing (healed)")

    async def _control_replication(self, name: str, request: dict[str, Any]) -> dict[str, Any]:
        if name != "messages" or self._session is None:
            raise ValueError('POST /_local/replication/messages with {"paused": bool, "delaySeconds": n}')
        async with self._session.post(f"{self.replication_url}/control", json=request) as response:
            status: dict[str, Any] = await response.json()
            return status

    async def status(self) -> dict[str, Any]:
        replication: dict[str, Any] | None = None
        if self._session is not None:
            try:
                async with self._session.get(f"{self.replication_url}/status") as response:
                    replication = await response.json()
            except (OSError, aiohttp.ClientError, ValueError):
                replication = None  # replication's process is gone: the supervisor is stopping
        return {
            "replication": replication,
            "processes": {r: p.running for r, p in self.regions.items()},
            "faults": {r: p.faults for r, p in self.regions.items()},
        }

    # ------------------------------------------------------------------ stop
    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        children = [r.process for r in self.regions.values()] + [self.replication, self.aws]
        for child in children:
            if child is not None and child.poll() is None:
                child.terminate()
        for child in children:
            if child is not None:
                try:
                    await asyncio.to_thread(child.wait, 5)
                except subprocess.TimeoutExpired:
                    child.kill()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        self.state.remove()

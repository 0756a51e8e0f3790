"""Route 53 health checking, as the local stack plays it.

Each region's check probes that region's own `/health` every interval; a region's status flips
after `failure_threshold` consecutive observations that disagree with it, as Route 53's does, and
each check's `Inverted` flag is read from the Route 53 API, so `aws route53 update-health-check
--inverted` against the local endpoint takes a region out, as in AWS. Every change of status is
an event, numbered, that a drill can wait for."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

log = logging.getLogger("health-checks")


@dataclass
class RegionHealth:
    region: str
    http_url: str
    websocket_url: str
    health_check_id: str
    observed_healthy: bool = True  # Route 53 counts a new check healthy until shown otherwise
    inverted: bool = False
    streak: int = 0  # consecutive probes that disagree with observed_healthy
    last_probe: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return self.observed_healthy != self.inverted

    def to_json(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "observedHealthy": self.observed_healthy,
            "inverted": self.inverted,
            "healthCheckId": self.health_check_id,
            "lastProbe": self.last_probe,
            "httpUrl": self.http_url,
            "websocketUrl": self.websocket_url,
        }


class HealthChecker:
    def __init__(
        self, route53: Any, regions: dict[str, RegionHealth], *, interval: float, failure_threshold: int
    ) -> None:
        self.route53 = route53
        self.regions = regions
        self.interval = interval
        self.failure_threshold = failure_threshold
        self.events: list[dict[str, Any]] = []
        self.event_count = 0
        self._new_event = asyncio.Event()

    def _event(self, kind: str, **details: Any) -> None:
        self.event_count += 1
        entry = {"seq": self.event_count, "at": time.time(), "event": kind, **details}
        self.events.append(entry)
        del self.events[:-200]
        self._new_event.set()
        self._new_event = asyncio.Event()
        log.info("%s %s", kind, json.dumps(details))

    async def events_after(self, after: int, wait: float) -> list[dict[str, Any]]:
        """The events numbered after `after`, waiting up to `wait` seconds for one if none yet."""
        if self.event_count <= after and wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_event.wait(), timeout=wait)
        return [e for e in self.events if e["seq"] > after]

    async def run(self) -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                started = time.monotonic()
                probes = (self.probe(session, r) for r in self.regions.values())
                await asyncio.gather(*probes, self.read_inversion())
                await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    async def read_inversion(self) -> None:
        for health in self.regions.values():
            try:
                check = await asyncio.to_thread(
                    self.route53.get_health_check, HealthCheckId=health.health_check_id
                )
            except Exception as error:  # noqa: BLE001 - keep the last known flag
                log.warning("cannot read health check %s: %s", health.health_check_id, error)
                continue
            inverted = bool(check["HealthCheck"]["HealthCheckConfig"].get("Inverted", False))
            if inverted != health.inverted:
                was = health.healthy
                health.inverted = inverted
                self._event("inverted" if inverted else "uninverted", region=health.region)
                if health.healthy != was:
                    self._event(
                        "healthy" if health.healthy else "unhealthy",
                        region=health.region,
                        reason="inverted" if inverted else "uninverted",
                    )

    async def probe(self, session: aiohttp.ClientSession, health: RegionHealth) -> None:
        started = time.perf_counter()
        try:
            # Route 53: a TCP connection within 4 s, then a 2xx/3xx within 2 s.
            timeout = aiohttp.ClientTimeout(sock_connect=4.0, sock_read=2.0)
            async with session.get(f"{health.http_url}/health", timeout=timeout) as response:
                ok = 200 <= response.status < 400  # Route 53: a 2xx or 3xx within the timeout
                result: dict[str, Any] = {"status": response.status}
        except (aiohttp.ClientError, TimeoutError) as error:
            ok, result = False, {"error": type(error).__name__}
        result.update(ok=ok, at=time.time(), ms=round((time.perf_counter() - started) * 1000, 1))
        health.last_probe = result
        if ok == health.observed_healthy:
            health.streak = 0
            return
        health.streak += 1
        # Recovery takes as many good probes as failure takes bad ones.
        if health.streak >= self.failure_threshold:
            was = health.healthy
            health.observed_healthy, health.streak = ok, 0
            self._event("probe-healthy" if ok else "probe-unhealthy", region=health.region, probe=result)
            if health.healthy != was:
                self._event(
                    "healthy" if health.healthy else "unhealthy", region=health.region, reason="probes"
                )

    def status(self) -> dict[str, Any]:
        return {
            "intervalSeconds": self.interval,
            "failureThreshold": self.failure_threshold,
            "regions": {name: r.to_json() for name, r in self.regions.items()},
        }

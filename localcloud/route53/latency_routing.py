"""Route 53 latency routing, as the local stack plays it: a client is answered with the nearest
healthy region for its (simulated) location; when no region is healthy, all are eligible (Route 53
fails open). Like a DNS answer, the choice holds for a connection's life."""

from __future__ import annotations

from aiohttp import web

from localcloud.route53.health_checks import HealthChecker, RegionHealth
from stack_definition.routing import LATENCY_MS

LOCATION_COOKIE = "rc-location"


class LatencyRouter:
    def __init__(self, health: HealthChecker, *, location: str) -> None:
        self._health = health
        self.location = location  # where a client is when it does not say
        self.routed: dict[str, int] = {}

    def location_of(self, request: web.Request) -> str:
        location = (
            request.query.get("location")
            or request.headers.get("X-Client-Location")
            or request.cookies.get(LOCATION_COOKIE)
            or self.location
        )
        return location if location in LATENCY_MS else self.location

    def answer(self, location: str) -> RegionHealth:
        """The region Route 53 answers with for a client at `location`."""
        latency = LATENCY_MS[location]
        ranked = sorted(self._health.regions.values(), key=lambda r: latency.get(r.region, 10_000))
        return ([r for r in ranked if r.healthy] or ranked)[0]  # nothing healthy: as if all were

    def route(self, request: web.Request) -> RegionHealth:
        chosen = self.answer(self.location_of(request))
        self.routed[chosen.region] = self.routed.get(chosen.region, 0) + 1
        return chosen

    def status(self) -> dict[str, object]:
        return {
            "location": self.location,
            "routing": {location: self.answer(location).region for location in LATENCY_MS},
            "routedRequests": self.routed,
        }

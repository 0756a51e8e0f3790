"""The front door plays Route 53 for the local stack.

- Health checks: it probes each region's own `/health` every interval; a region's status flips
  after `failure_threshold` consecutive observations that disagree with it, as Route 53's does.
  Each check's `Inverted` flag is read from the Route 53 API, so `aws route53
  update-health-check --inverted` against the local endpoint takes a region out, as in AWS.
- Latency routing: every new connection or request is sent to the nearest healthy region for
  the client's (simulated) location; when no region is healthy, all are eligible (Route 53 fails
  open). Like a DNS answer, the choice holds for the connection's life: an open WebSocket stays
  where it is until it closes.
- It serves the chat page and its config, and shows what it decided at /_frontdoor/status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from yarl import URL

log = logging.getLogger("frontdoor")

# Illustrative round-trip times (ms) from a client location to each region: what Route 53's
# latency records decide on. A region name as location means "a client next to that region".
LATENCY_MS: dict[str, dict[str, int]] = {
    "us-east-1": {"us-east-1": 5, "eu-west-2": 76},
    "eu-west-2": {"us-east-1": 76, "eu-west-2": 5},
    "new-york": {"us-east-1": 8, "eu-west-2": 70},
    "toronto": {"us-east-1": 18, "eu-west-2": 88},
    "san-francisco": {"us-east-1": 62, "eu-west-2": 138},
    "sao-paulo": {"us-east-1": 115, "eu-west-2": 190},
    "london": {"us-east-1": 74, "eu-west-2": 4},
    "paris": {"us-east-1": 80, "eu-west-2": 9},
    "frankfurt": {"us-east-1": 88, "eu-west-2": 15},
    "tokyo": {"us-east-1": 150, "eu-west-2": 215},
}
LOCATION_COOKIE = "rc-location"
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "proxy-connection",
    "te",
    "trailer",
}


async def _nothing() -> dict[str, Any]:
    return {}


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


class FrontDoor:
    def __init__(self, *, interval: float, failure_threshold: int, location: str, frontend: Path) -> None:
        self.interval = interval
        self.failure_threshold = failure_threshold
        self.location = location
        self.frontend = frontend
        self.regions: dict[str, RegionHealth] = {}
        self.route53: Any = None
        self.events: list[dict[str, Any]] = []
        self.event_count = 0
        self._new_event = asyncio.Event()
        self.routed: dict[str, int] = {}
        self.open_sockets = 0
        self.extra_status: Callable[[], Awaitable[dict[str, Any]]] = _nothing
        self.controls: dict[str, Callable[[str], Awaitable[Any]]] = {}
        self.config: dict[str, Any] = {}
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the front door's app has not started")
        return self._session

    # ------------------------------------------------------------------ health checks
    def configure(self, route53: Any, regions: dict[str, RegionHealth]) -> None:
        self.route53 = route53
        self.regions = regions

    def _event(self, kind: str, **details: Any) -> None:
        self.event_count += 1
        entry = {"seq": self.event_count, "at": time.time(), "event": kind, **details}
        self.events.append(entry)
        del self.events[:-200]
        self._new_event.set()
        self._new_event = asyncio.Event()
        log.info("%s %s", kind, json.dumps(details))

    async def probe_forever(self) -> None:
        while True:
            started = time.monotonic()
            await asyncio.gather(*(self.probe(r) for r in self.regions.values()), self.read_inversion())
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

    async def probe(self, health: RegionHealth) -> None:
        started = time.perf_counter()
        try:
            # Route 53: a TCP connection within 4 s, then a 2xx/3xx within 2 s.
            timeout = aiohttp.ClientTimeout(sock_connect=4.0, sock_read=2.0)
            async with self.session.get(f"{health.http_url}/health", timeout=timeout) as response:
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

    # ------------------------------------------------------------------ routing
    def location_of(self, request: web.Request) -> str:
        location = (
            request.query.get("location")
            or request.headers.get("X-Client-Location")
            or request.cookies.get(LOCATION_COOKIE)
            or self.location
        )
        return location if location in LATENCY_MS else self.location

    def route(self, location: str) -> RegionHealth:
        latency = LATENCY_MS[location]
        ranked = sorted(self.regions.values(), key=lambda r: latency.get(r.region, 10_000))
        healthy = [r for r in ranked if r.healthy]
        chosen = (healthy or ranked)[0]  # nothing healthy: Route 53 answers as if all were
        self.routed[chosen.region] = self.routed.get(chosen.region, 0) + 1
        return chosen

    async def status(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "intervalSeconds": self.interval,
            "failureThreshold": self.failure_threshold,
            "regions": {name: r.to_json() for name, r in self.regions.items()},
            "routing": {loc: self._peek(loc) for loc in LATENCY_MS},
            "routedRequests": self.routed,
            "openWebSockets": self.open_sockets,
            "events": self.events[-50:],
            **(await self.extra_status()),
        }

    def _peek(self, location: str) -> str | None:
        if not self.regions:
            return None
        latency = LATENCY_MS[location]
        ranked = sorted(self.regions.values(), key=lambda r: latency.get(r.region, 10_000))
        return ([r for r in ranked if r.healthy] or ranked)[0].region

    # ------------------------------------------------------------------ serving
    def app(self) -> web.Application:
        app = web.Application(client_max_size=11 * 1024 * 1024)
        app.router.add_get("/_frontdoor/status", self.handle_status)
        app.router.add_get("/_frontdoor/events", self.handle_events)
        app.router.add_post("/_local/{kind}/{name}", self.handle_control)
        app.router.add_get("/config.json", self.handle_config)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_startup.append(self._open_session)
        app.on_cleanup.append(self._close_session)
        return app

    async def _open_session(self, _: web.Application) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False)

    async def _close_session(self, _: web.Application) -> None:
        if self._session is not None:
            await self.session.close()

    async def handle_status(self, _: web.Request) -> web.Response:
        return web.json_response(await self.status(), dumps=lambda v: json.dumps(v, indent=2))

    async def handle_events(self, request: web.Request) -> web.Response:
        """Health and routing events after `after` (a seq); waits up to `wait` seconds for one."""
        try:
            after = int(request.query.get("after", "0"))
            wait = min(float(request.query.get("wait", "0")), 60.0)
        except ValueError:
            return web.json_response(
                {"error": {"code": "bad_request", "message": "after: int, wait: seconds"}}, status=400
            )
        if self.event_count <= after and wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_event.wait(), timeout=wait)
        events = [e for e in self.events if e["seq"] > after]
        return web.json_response(
            {
                "events": events,
                "last": self.event_count,
                "regions": {n: r.healthy for n, r in self.regions.items()},
            }
        )

    async def handle_config(self, request: web.Request) -> web.Response:
        return web.json_response(
            {**self.config, "location": self.location_of(request), "locations": list(LATENCY_MS)}
        )

    @staticmethod
    def _control_refusal(request: web.Request) -> str | None:
        """Why a control request may not act, or None. Any page the developer opens can send a
        "simple" cross-origin POST (text/plain, no preflight) to loopback; a JSON body forces a
        preflight, which the front door never grants, and an Origin header is either absent (a
        tool: curl, the drill, the tests) or this front door's own."""
        if request.content_type != "application/json":
            return "control requests must be Content-Type: application/json"
        origin = request.headers.get("Origin")
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        port = sockname[1] if sockname else None
        if origin is not None and origin not in {
            f"http://{host}:{port}" for host in ("127.0.0.1", "localhost")
        }:
            return f"control requests are refused from origin {origin}"
        return None

    async def handle_control(self, request: web.Request) -> web.Response:
        refusal = self._control_refusal(request)
        if refusal is not None:
            log.warning("refused a control request to %s: %s", request.path, refusal)
            return web.json_response({"error": {"code": "forbidden", "message": refusal}}, status=403)
        kind, name = request.match_info["kind"], request.match_info["name"]
        try:
            body = await request.json()
        except ValueError:
            body = {}
        control = self.controls.get(kind)
        if control is None:
            return web.json_response(
                {"error": {"code": "not_found", "message": f"no control {kind}"}}, status=404
            )
        try:
            result = await control(json.dumps({"name": name, **(body if isinstance(body, dict) else {})}))
        except ValueError as error:
            return web.json_response({"error": {"code": "bad_request", "message": str(error)}}, status=400)
        return web.json_response(result)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.proxy_websocket(request)
        path = request.path
        if path == "/health" or path.startswith("/rooms/"):
            return await self.proxy_http(request)
        return await self.static(path)

    async def static(self, path: str) -> web.StreamResponse:
        relative = "index.html" if path in ("", "/") else path.lstrip("/")
        target = (self.frontend / relative).resolve()
        if self.frontend.resolve() not in target.parents or not target.is_file():
            return web.json_response({"message": "Not Found"}, status=404)
        return web.FileResponse(target, headers={"Cache-Control": "no-cache"})

    def _forward_query(self, request: web.Request) -> dict[str, str]:
        return {k: v for k, v in request.query.items() if k != "location"}

    async def proxy_http(self, request: web.Request) -> web.StreamResponse:
        region = self.route(self.location_of(request))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            async with self.session.request(
                request.method,
                f"{region.http_url}{request.path}",
                params=self._forward_query(request),
                headers=headers,
                data=await request.read(),
                allow_redirects=False,
            ) as upstream:
                body = await upstream.read()
                out = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
                out["X-Routed-Region"] = region.region
                return web.Response(status=upstream.status, body=body, headers=out)
        except aiohttp.ClientError as error:
            # What a client sees when the address it resolved stops answering.
            return web.json_response(
                {"message": "Bad Gateway", "region": region.region, "error": type(error).__name__}, status=502
            )

    async def proxy_websocket(self, request: web.Request) -> web.StreamResponse:
        region = self.route(self.location_of(request))
        try:
            # The websockets client keeps a refusal's body (aiohttp's drops it), so a client
            # refused through the front door reads the region's JSON error, as it would direct.
            upstream = await connect(
                str(URL(region.websocket_url).with_query(self._forward_query(request))),
                additional_headers={"X-Forwarded-For": request.remote or ""},
                user_agent_header=request.headers.get("User-Agent"),
                compression=None,
                max_size=None,
                ping_interval=None,
            )
        except InvalidStatus as refused:
            answer = refused.response
            return web.Response(
                status=answer.status_code,
                body=bytes(answer.body),
                content_type=answer.headers.get("Content-Type", "text/plain").split(";")[0],
            )
        except (OSError, InvalidHandshake, TimeoutError) as error:
            return web.json_response(
                {"message": "Bad Gateway", "region": region.region, "error": type(error).__name__}, status=502
            )
        client = web.WebSocketResponse(max_msg_size=0, autoping=True)
        client.headers["X-Routed-Region"] = region.region
        await client.prepare(request)
        self.open_sockets += 1
        try:
            await self._pump(client, upstream)
        finally:
            self.open_sockets -= 1
        return client

    @staticmethod
    async def _pump(client: web.WebSocketResponse, upstream: ClientConnection) -> None:
        async def from_client() -> None:
            async for msg in client:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await upstream.send(msg.data)
                else:
                    break

        async def from_upstream() -> None:
            with contextlib.suppress(ConnectionClosed):
                async for data in upstream:
                    await (client.send_str(data) if isinstance(data, str) else client.send_bytes(data))

        tasks = [asyncio.create_task(from_client()), asyncio.create_task(from_upstream())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        code = upstream.close_code or client.close_code or 1000
        with contextlib.suppress(ConnectionClosed):
            await upstream.close(code=code)
        await client.close(code=code)

"""The front door: what a client reaches instead of the routed DNS names. It serves the chat page
and its config, sends each request and WebSocket to the region latency routing answers with,
shows what health checking and routing decided (`/_frontdoor/status`, `/_frontdoor/events`), and
takes the drill's control requests (`POST /_local/<kind>/<name>`) to the supervisor."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from aiohttp import WSMsgType, web
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from yarl import URL

from localcloud.route53.health_checks import HealthChecker
from localcloud.route53.latency_routing import LatencyRouter
from stack_definition.routing import LATENCY_MS
from stack_definition.template import HttpRoute

log = logging.getLogger("frontdoor")

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


# Close codes that say how a connection ended and may never be sent in a close frame (RFC 6455).
NEVER_SENT = {1005, 1006, 1015}


class NoSuchControl(LookupError):
    pass


class Controls(Protocol):
    """The supervisor's control and status API, as the front door uses it."""

    async def control(self, kind: str, name: str, request: dict[str, Any]) -> dict[str, Any]:
        """Act on a part (ValueError: a bad request; NoSuchControl: no such kind)."""

    async def status(self) -> dict[str, Any]: ...


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


class FrontDoor:
    def __init__(
        self,
        *,
        health: HealthChecker,
        router: LatencyRouter,
        controls: Controls,
        frontend: Path,
        config: dict[str, Any],
        api_routes: Sequence[HttpRoute],
    ) -> None:
        """`api_routes`: the HTTP API's routes (the template's), the paths sent to a region."""
        self._health = health
        self._api_routes = api_routes
        self._router = router
        self._controls = controls
        self._frontend = frontend
        self._config = config  # the chat page's config.json
        self._session: aiohttp.ClientSession | None = None
        self.open_sockets = 0

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

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("the front door's app has not started")
        return self._session

    async def _open_session(self, _: web.Application) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False)

    async def _close_session(self, _: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    # ------------------------------------------------------------------ status and control
    async def handle_status(self, _: web.Request) -> web.Response:
        status = {
            **self._health.status(),
            **self._router.status(),
            "openWebSockets": self.open_sockets,
            "events": self._health.events[-50:],
            **(await self._controls.status()),
        }
        return web.json_response(status, dumps=lambda v: json.dumps(v, indent=2))

    async def handle_events(self, request: web.Request) -> web.Response:
        """Health and routing events after `after` (a seq); waits up to `wait` seconds for one."""
        try:
            after = int(request.query.get("after", "0"))
            wait = min(float(request.query.get("wait", "0")), 60.0)
        except ValueError:
            return _error(400, "bad_request", "after: int, wait: seconds")
        events = await self._health.events_after(after, wait)
        return web.json_response(
            {
                "events": events,
                "last": self._health.event_count,
                "regions": {n: r.healthy for n, r in self._health.regions.items()},
            }
        )

    async def handle_config(self, request: web.Request) -> web.Response:
        location = self._router.location_of(request)
        return web.json_response({**self._config, "location": location, "locations": list(LATENCY_MS)})

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
            return _error(403, "forbidden", refusal)
        kind, name = request.match_info["kind"], request.match_info["name"]
        try:
            body = await request.json()
        except ValueError:
            body = {}
        try:
            result = await self._controls.control(kind, name, body if isinstance(body, dict) else {})
        except NoSuchControl:
            return _error(404, "not_found", f"no control {kind}")
        except ValueError as error:
            return _error(400, "bad_request", str(error))
        return web.json_response(result)

    # ------------------------------------------------------------------ serving
    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.proxy_websocket(request)
        path = request.path
        if any(route.match_path(path) is not None for route in self._api_routes):
            return await self.proxy_http(request)  # the region answers, 404 for another method too
        return await self.static(path)

    async def static(self, path: str) -> web.StreamResponse:
        relative = "index.html" if path in ("", "/") else path.lstrip("/")
        target = (self._frontend / relative).resolve()
        if self._frontend.resolve() not in target.parents or not target.is_file():
            return web.json_response({"message": "Not Found"}, status=404)
        return web.FileResponse(target, headers={"Cache-Control": "no-cache"})

    @staticmethod
    def _forward_query(request: web.Request) -> dict[str, str]:
        return {k: v for k, v in request.query.items() if k != "location"}

    async def proxy_http(self, request: web.Request) -> web.StreamResponse:
        region = self._router.route(request)
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
        region = self._router.route(request)
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
            await _pump(client, upstream)
        finally:
            self.open_sockets -= 1
        return client


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
    if code in NEVER_SENT:
        # The client went without a close frame: so does its connection to the region, as a
        # client's dropped TCP reaches API Gateway in AWS (there, no proxy is in between).
        upstream.transport.abort()
    else:
        with contextlib.suppress(ConnectionClosed):
            await upstream.close(code=code)
    await client.close(code=code)

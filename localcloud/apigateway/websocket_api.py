"""API Gateway's WebSocket API and its `@connections` management API.

- `$connect` runs its route's Lambda REQUEST authorizer first, if it has one (authorizers.py),
  then gets the query string and headers, and refuses the connection unless it answers 2xx; every
  event of an authorized connection carries the authorizer's answer;
- each message goes to the route its body's `action` names (the template's route selection,
  `$request.body.action`), else to `$default`; a two-way route's response body goes back to the
  client; a route whose integration is API Gateway's own (MOCK, or an AWS service action: the
  heartbeat, `ping`, Queries DynamoDB) is answered by its integration response with no function
  (service_integrations.py); the stage's throttle and API Gateway's size
  and idle limits apply; every message to or from a client is counted as AWS bills it;
- `$disconnect` runs when either side closes;
- `@connections/{id}` (signed callers only) posts to, describes or closes a connection, and
  answers 410 GoneException for one that is gone."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

from localcloud.apigateway.authorizers import LambdaRequestAuthorizer, Refused
from localcloud.apigateway.events import new_connection_id, websocket_event
from localcloud.apigateway.service_integrations import IntegrationFailed, bind
from localcloud.aws import call_counter
from localcloud.lambda_.runtime import LambdaRuntime
from stack_definition.template import Template

log = logging.getLogger("websocket-api")

MAX_WS_MESSAGE = 128 * 1024  # API Gateway: 128 KB per WebSocket message
MAX_WS_FRAME = 32 * 1024  # and 32 KB per frame
IDLE_TIMEOUT = 600.0  # API Gateway closes idle connections after 10 minutes
MESSAGE = "apigateway.WebSocketMessage"  # billed per message each way (in 32 KB units: one frame)


class TokenBucket:
    """A stage's throttle: `rate` requests per second on average, bursts of up to `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass
class Connection:
    socket: web.WebSocketResponse
    connected_at: float
    source_ip: str
    user_agent: str
    last_active: float = field(default_factory=time.time)
    authorizer: dict[str, Any] | None = None  # `requestContext.authorizer` of its every event


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _gone() -> web.Response:
    return web.json_response({"message": None}, status=410, headers={"x-amzn-ErrorType": "GoneException"})


class WebSocketApi:
    def __init__(
        self,
        template: Template,
        runtime: LambdaRuntime,
        *,
        region: str,
        api_id: str,
        domain: str,
        stage: Any,
    ) -> None:
        """`stage` is the template's resolved stage: its name and default route settings."""
        self._routes = template.websocket_routes
        connect = self._routes.get("$connect")
        self._authorizer = (
            LambdaRequestAuthorizer(connect.authorizer, runtime, region=region)
            if connect is not None and connect.authorizer is not None
            else None
        )
        # API Gateway's own integrations, with this region's values (the table's name, the region).
        self._integrations = {
            key: bind(route.integration, template.context(region))
            for key, route in self._routes.items()
            if route.integration is not None
        }
        self._runtime = runtime
        self._api_id = api_id
        self._domain = domain
        self.stage = str(stage["StageName"])
        limits = stage.get("DefaultRouteSettings", {})
        self._throttle = TokenBucket(
            float(limits.get("ThrottlingRateLimit", 10_000)), int(limits.get("ThrottlingBurstLimit", 5_000))
        )
        self.connections: dict[str, Connection] = {}

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", f"/{self.stage}/@connections/{{connection_id}}", self.management)
        app.router.add_route("*", "/{tail:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.websocket(request)
        return web.json_response({"message": "Forbidden"}, status=403)

    def _event(self, route_key: str, connection_id: str, conn: Connection, **extra: Any) -> dict[str, Any]:
        return websocket_event(
            api_id=self._api_id,
            domain=self._domain,
            stage=self.stage,
            route_key=route_key,
            connection_id=connection_id,
            connected_at_ms=int(conn.connected_at * 1000),
            source_ip=conn.source_ip,
            user_agent=conn.user_agent,
            authorizer=conn.authorizer,
            **extra,
        )

    def _route_of(self, text: str | None) -> str:
        """`$request.body.action`: the action's value if it names a route, else `$default`."""
        if text is not None:
            try:
                body = json.loads(text)
            except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python's stack
                body = None  # no action to select by: API Gateway routes such a frame to $default
            action = body.get("action") if isinstance(body, dict) else None
            if isinstance(action, str) and action in self._routes and not action.startswith("$"):
                return action
        return "$default"

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        connection_id = new_connection_id()
        conn = Connection(
            socket=web.WebSocketResponse(max_msg_size=MAX_WS_MESSAGE, autoping=True),
            connected_at=time.time(),
            source_ip=request.remote or "127.0.0.1",
            user_agent=request.headers.get("User-Agent", ""),
        )
        connect = self._routes.get("$connect")
        authorizer_ms = 0.0
        if connect is not None:
            event = self._event(
                "$connect",
                connection_id,
                conn,
                headers=request.headers.items(),
                query_pairs=request.query.items(),
            )
            if self._authorizer is not None:
                started = time.perf_counter()
                try:
                    conn.authorizer = await self._authorizer.authorize(event)
                except Refused as refused:
                    log.info("WS refused by the authorizer %s", refused.status)  # never the query: a token
                    return web.json_response({"message": str(refused)}, status=refused.status)
                finally:
                    authorizer_ms = (time.perf_counter() - started) * 1000
                event["requestContext"]["authorizer"] = conn.authorizer
            try:
                result = (
                    await self._runtime.invoke(connect.function, event)
                    if connect.function is not None
                    else {"statusCode": connect.mock.status if connect.mock else 200}
                )
                status = int(result.get("statusCode", 200)) if isinstance(result, dict) else 200
            except Exception:
                log.exception("$connect failed")
                status = 500
            if not 200 <= status < 300:
                log.info("WS refused %s", status)
                body = result.get("body", "") if status != 500 and isinstance(result, dict) else ""
                return web.Response(status=status, text=body or None)
        socket = conn.socket
        await socket.prepare(request)
        self.connections[connection_id] = conn
        # As the stage's access log: the connection, its user and the authorizer's latency
        # ($context.authorizer.latency), never the query string (it holds a token).
        user = (conn.authorizer or {}).get("principalId", "-")
        log.info("WS connected %s user=%s authorizer=%.1fms", connection_id, user, authorizer_ms)
        close_code, reason = 1000, "Normal closure"
        in_flight: set[asyncio.Task[None]] = set()
        try:
            while True:
                try:
                    msg = await socket.receive(timeout=IDLE_TIMEOUT)
                except TimeoutError:
                    close_code, reason = 1001, "Going away"
                    await socket.close(code=1001, message=b"Going away")
                    break
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    conn.last_active = time.time()
                    call_counter.count(MESSAGE)
                    if len(msg.data) > MAX_WS_FRAME:
                        # Browsers send a message as one frame: over 32 KB, API Gateway closes.
                        close_code, reason = 1009, "Message too big"
                        await socket.close(code=1009, message=b"Message too big")
                        break
                    body, is_base64 = (
                        (msg.data, False)
                        if msg.type == WSMsgType.TEXT
                        else (base64.b64encode(msg.data).decode(), True)
                    )
                    # API Gateway invokes the integration for each message as it arrives.
                    task = asyncio.create_task(self.message(connection_id, conn, body, is_base64=is_base64))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                elif msg.type == WSMsgType.ERROR:  # over max_msg_size (128 KB) or a protocol error
                    close_code, reason = 1009, "Message too big"
                    await socket.close(code=1009, message=b"Message too big")
                    break
                else:  # CLOSE / CLOSING / CLOSED
                    close_code = socket.close_code or 1005
                    break
        finally:
            self.connections.pop(connection_id, None)
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)
            disconnect = self._routes.get("$disconnect")
            if disconnect is not None and disconnect.function is not None:
                event = self._event(
                    "$disconnect",
                    connection_id,
                    conn,
                    headers=request.headers.items(),
                    disconnect=(close_code, reason),
                )
                try:
                    await self._runtime.invoke(disconnect.function, event)
                except Exception:
                    log.exception("$disconnect failed")
            log.info("WS disconnected %s %s", connection_id, close_code)
        return socket

    async def message(self, connection_id: str, conn: Connection, body: str, *, is_base64: bool) -> None:
        route_key = self._route_of(None if is_base64 else body)
        route = self._routes.get(route_key)
        if route is None:
            await self._send(conn, json.dumps({"message": "Forbidden", "connectionId": connection_id}))
            return
        event = self._event(route_key, connection_id, conn, body=body, is_base64=is_base64)
        request_id = event["requestContext"]["requestId"]
        if not self._throttle.take():
            refusal = {"message": "Too Many Requests", "connectionId": connection_id, "requestId": request_id}
            await self._send(conn, json.dumps(refusal))
            return
        if route.function is None:  # API Gateway's own integration (MOCK, AWS): no function runs
            integration = self._integrations.get(route_key)
            try:
                answer = await integration.answer(event["requestContext"]) if integration else None
            except IntegrationFailed as failed:  # its ExecutionError: the integration was not called
                log.error("%s", failed)
                error = {"message": "Internal server error", "connectionId": connection_id}
                answer = json.dumps({**error, "requestId": request_id})
            if route.two_way and answer:
                await self._send(conn, answer)
            return
        try:
            result = await self._runtime.invoke(route.function, event)
        except Exception:
            log.exception("%s failed", route.function)
            error = {
                "message": "Internal server error",
                "connectionId": connection_id,
                "requestId": request_id,
            }
            await self._send(conn, json.dumps(error))
            return
        if route.two_way and isinstance(result, dict) and result.get("body"):
            await self._send(conn, str(result["body"]))

    @staticmethod
    async def _send(conn: Connection, text: str) -> None:
        """A frame to the client, unless it has gone meanwhile (then there is nobody to tell)."""
        if not conn.socket.closed:
            with contextlib.suppress(ConnectionResetError):
                await conn.socket.send_str(text)
                call_counter.count(MESSAGE)

    # ------------------------------------------------------------------ @connections
    async def management(self, request: web.Request) -> web.StreamResponse:
        if not request.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256"):
            # Only signed calls (IAM: execute-api:ManageConnections) reach it in AWS.
            return web.json_response({"message": "Missing Authentication Token"}, status=403)
        conn = self.connections.get(request.match_info["connection_id"])
        if conn is None or conn.socket.closed:
            return _gone()
        if request.method == "POST":
            call_counter.count("apigatewaymanagementapi.PostToConnection")  # signed HTTP, not boto3
            data = await request.read()
            if len(data) > MAX_WS_MESSAGE:
                return web.json_response(
                    {"message": "Message too long"},
                    status=413,
                    headers={"x-amzn-ErrorType": "PayloadTooLargeException"},
                )
            try:
                await conn.socket.send_str(data.decode())
            except UnicodeDecodeError:
                await conn.socket.send_bytes(data)
            except ConnectionResetError:
                return _gone()
            call_counter.count(MESSAGE)
            return web.Response(status=200)
        if request.method == "GET":
            return web.json_response(
                {
                    "connectedAt": _iso(conn.connected_at),
                    "identity": {"sourceIp": conn.source_ip, "userAgent": conn.user_agent},
                    "lastActiveAt": _iso(conn.last_active),
                }
            )
        if request.method == "DELETE":
            await conn.socket.close(code=1000, message=b"Closed by the server")
            return web.Response(status=204)
        return web.json_response({"message": "Forbidden"}, status=403)

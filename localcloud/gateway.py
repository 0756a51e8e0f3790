"""One region of the local stack, in its own process with that region's environment:

- the HTTP API (payload format 2.0 events, routes and CORS from template.yaml);
- the WebSocket API (`$connect` with query string and headers, route selection on the body's
  `action`, `$disconnect`, route responses) and its `@connections` management API;
- the messages stream's event source mapping: batches to the fan-out function, partial batch
  failures, bisection on error, a checkpoint that survives a restart of this process.

Run by the stack supervisor: `python -m localcloud.gateway --region us-east-1 ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from aiohttp import WSMsgType, web

from localcloud import provision
from localcloud.events import LambdaContext, http_event, new_connection_id, websocket_event
from localcloud.runtime import invoke, load_handler, region_environment
from localcloud.streams import ShardReader, lambda_record, passes_filters, read_with_retries
from localcloud.template import HttpRoute, Template, load

log = logging.getLogger("gateway")

MAX_WS_MESSAGE = 128 * 1024  # API Gateway: 128 KB per WebSocket message
MAX_WS_FRAME = 32 * 1024  # and 32 KB per frame
IDLE_TIMEOUT = 600.0  # API Gateway closes idle connections after 10 minutes
MAX_HTTP_BODY = 10 * 1024 * 1024


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


# ---- opt-in AWS call counter, for bench/cost.py (LOCALCLOUD_COUNT_AWS_CALLS=1) --------------------
# Counts every botocore API call this process makes (the handlers' and the stream poller's) by
# "service.Operation", and the @connections posts it serves (the fan-out signs and sends those
# itself, without boto3). Registered on boto3's default session before any client exists, so
# every client inherits it. GET /_local/aws-calls on the WebSocket port reads the counts; DELETE resets.
COUNT_AWS_CALLS = os.environ.get("LOCALCLOUD_COUNT_AWS_CALLS") == "1"
_aws_calls: Counter[str] = Counter()
_aws_calls_lock = threading.Lock()


def _count_aws_call(model: Any, **_: Any) -> None:
    with _aws_calls_lock:
        _aws_calls[f"{model.service_model.service_name}.{model.name}"] += 1


def _aws_calls_response(method: str) -> web.Response:
    with _aws_calls_lock:
        counts = dict(_aws_calls)
        if method == "DELETE":
            _aws_calls.clear()
    return web.json_response({"calls": counts})


# ---- end of the AWS call counter ---------------------------------------------------------------


def _rss_bytes() -> int:
    """This process's resident memory (Linux), for the soak test."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Region:
    def __init__(
        self,
        template: Template,
        region: str,
        aws_endpoint: str,
        host: str,
        state_dir: Path,
        poll_interval: float,
        http_port: int,
        ws_port: int,
    ) -> None:
        self.template = template
        self.region = region
        self.aws_endpoint = aws_endpoint
        self.host = host
        self.state_dir = state_dir
        self.poll_interval = poll_interval
        self.http_port = http_port
        self.ws_port = ws_port
        self.tables = provision.create_tables(template, aws_endpoint, region)
        self.ctx = template.context(region, provision.STACK_NAME, {}, {})
        self.stage = str(self.ctx.resolve(template.websocket_stage["StageName"]))
        self.cors = self.ctx.resolve(template.http_cors) if template.http_cors else None
        limits = self.ctx.resolve(template.websocket_stage.get("DefaultRouteSettings", {}))
        self.throttle = TokenBucket(
            float(limits.get("ThrottlingRateLimit", 10_000)), int(limits.get("ThrottlingBurstLimit", 5_000))
        )
        self.connections: dict[str, Connection] = {}
        # Lambda runs invocations concurrently, each function in its own containers.
        self.executor = ThreadPoolExecutor(max_workers=64, thread_name_prefix=f"lambda-{region}")
        self.poke = asyncio.Event()
        self.handlers: dict[str, Any] = {}

    def configure(self, allowed_origin: str | None) -> None:
        """Set this region's Lambda environment (before any handler is imported) and load them."""
        if allowed_origin:
            self.ctx = self.template.context(
                self.region, provision.STACK_NAME, {"AllowedOrigin": allowed_origin}, {}
            )
            self.cors = self.ctx.resolve(self.template.http_cors) if self.template.http_cors else None
        os.environ.update(
            region_environment(
                self.template,
                self.region,
                refs={"ConnectionsTable": self.tables["connections"]},
                aws_endpoint=self.aws_endpoint,
                local_urls={"WebSocketApi": f"http://{self.host}:{self.ws_port}"},
            )
        )
        self.handlers = {
            logical_id: load_handler(function.handler)
            for logical_id, function in self.template.functions.items()
        }

    # ------------------------------------------------------------------ Lambda
    async def invoke(self, function_id: str, event: dict[str, Any]) -> Any:
        function = self.template.functions[function_id]
        context = LambdaContext(
            f"resilient-chat-{function_id}", self.region, function.memory, function.timeout
        )
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(self.executor, invoke, self.handlers[function_id], event, context),
                timeout=function.timeout,
            )
        finally:
            self.poke.set()  # the invocation may have written a message: look at the stream now

    # ------------------------------------------------------------------ HTTP API
    def _cors_headers(self, request: web.Request) -> dict[str, str]:
        origin = request.headers.get("Origin")
        if not self.cors or not origin or origin not in self.cors.get("AllowOrigins", []):
            return {}
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}

    def _http_route(self, method: str, path: str) -> tuple[HttpRoute, str, dict[str, str]] | None:
        for route, function_id in self.template.http_routes:
            params = route.match(method, path)
            if params is not None:
                return route, function_id, params
        return None

    async def http(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        response = await self._http(request)
        log.info(
            "HTTP %s %s %s %.1fms",
            request.method,
            request.path_qs,
            response.status,
            (time.perf_counter() - started) * 1000,
        )
        return response

    async def _http(self, request: web.Request) -> web.StreamResponse:
        cors = self._cors_headers(request)
        if request.method == "OPTIONS" and self.cors and "Access-Control-Request-Method" in request.headers:
            if not cors:
                return web.Response(status=204)
            cors.update(
                {
                    "Access-Control-Allow-Methods": ",".join(self.cors.get("AllowMethods", [])),
                    "Access-Control-Allow-Headers": ",".join(self.cors.get("AllowHeaders", [])),
                    "Access-Control-Max-Age": str(self.cors.get("MaxAge", 0)),
                }
            )
            return web.Response(status=204, headers=cors)
        found = self._http_route(request.method, request.path)
        if found is None:
            return web.json_response({"message": "Not Found"}, status=404, headers=cors)
        route, function_id, params = found
        body = await request.read()
        if len(body) > MAX_HTTP_BODY:
            return web.json_response({"message": "Request Entity Too Large"}, status=413, headers=cors)
        event = http_event(
            api_id=f"http-{self.region}",
            domain=request.host,
            method=request.method,
            path=request.path,
            raw_query=request.query_string,
            query_pairs=request.query.items(),
            headers=request.headers.items(),
            route_key=route.route_key,
            path_parameters=params,
            body=body,
            source_ip=request.remote or "127.0.0.1",
        )
        try:
            result = await self.invoke(function_id, event)
        except Exception:
            log.exception("%s failed", function_id)
            return web.json_response({"message": "Internal Server Error"}, status=500, headers=cors)
        return self._http_response(result, cors)

    @staticmethod
    def _http_response(result: Any, cors: dict[str, str]) -> web.Response:
        if not isinstance(result, dict) or "statusCode" not in result:
            return web.json_response(result, headers=cors)  # payload 2.0: a bare value is a 200 JSON body
        headers = {**{k: str(v) for k, v in (result.get("headers") or {}).items()}, **cors}
        raw = result.get("body") or ""
        data = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
        response = web.Response(status=int(result["statusCode"]), body=data, headers=headers)
        for cookie in result.get("cookies") or []:
            response.headers.add("Set-Cookie", cookie)
        return response

    # ------------------------------------------------------------------ WebSocket API
    def _ws_event(self, route_key: str, connection_id: str, conn: Connection, **extra: Any) -> dict[str, Any]:
        return websocket_event(
            api_id=f"ws-{self.region}",
            domain=f"{self.host}:{self.ws_port}",
            stage=self.stage,
            route_key=route_key,
            connection_id=connection_id,
            connected_at_ms=int(conn.connected_at * 1000),
            source_ip=conn.source_ip,
            user_agent=conn.user_agent,
            **extra,
        )

    def _route_of(self, text: str | None) -> str:
        """`$request.body.action`: the action's value if it names a route, else `$default`."""
        routes = self.template.websocket_routes
        if text is not None:
            try:
                body = json.loads(text)
            except ValueError:
                body = None
            action = body.get("action") if isinstance(body, dict) else None
            if isinstance(action, str) and action in routes and not action.startswith("$"):
                return action
        return "$default"

    async def websocket_or_management(self, request: web.Request) -> web.StreamResponse:
        if COUNT_AWS_CALLS and request.path == "/_local/aws-calls":  # the opt-in counter, above
            return _aws_calls_response(request.method)
        if request.path == "/_local/stats":  # for the soak test: what this region holds now
            return web.json_response({"connections": len(self.connections), "rssBytes": _rss_bytes()})
        parts = request.path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == self.stage and parts[1] == "@connections":
            return await self.management(request, parts[2])
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.websocket(request)
        return web.json_response({"message": "Forbidden"}, status=403)

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        connection_id = new_connection_id()
        conn = Connection(
            socket=web.WebSocketResponse(max_msg_size=MAX_WS_MESSAGE, autoping=True),
            connected_at=time.time(),
            source_ip=request.remote or "127.0.0.1",
            user_agent=request.headers.get("User-Agent", ""),
        )
        connect = self.template.websocket_routes.get("$connect")
        if connect is not None:
            event = self._ws_event(
                "$connect",
                connection_id,
                conn,
                headers=request.headers.items(),
                query_pairs=request.query.items(),
            )
            try:
                result = await self.invoke(connect.function, event)
                status = int(result.get("statusCode", 200)) if isinstance(result, dict) else 200
            except Exception:
                log.exception("$connect failed")
                status = 500
            if not 200 <= status < 300:
                log.info("WS refused %s %s", request.path_qs, status)
                body = result.get("body", "") if status != 500 and isinstance(result, dict) else ""
                return web.Response(status=status, text=body or None)
        socket = conn.socket
        await socket.prepare(request)
        self.connections[connection_id] = conn
        log.info("WS connected %s %s", connection_id, request.query_string)
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
                    task = asyncio.create_task(
                        self.ws_message(connection_id, conn, body, is_base64=is_base64)
                    )
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
            disconnect = self.template.websocket_routes.get("$disconnect")
            if disconnect is not None:
                event = self._ws_event(
                    "$disconnect",
                    connection_id,
                    conn,
                    headers=request.headers.items(),
                    disconnect=(close_code, reason),
                )
                try:
                    await self.invoke(disconnect.function, event)
                except Exception:
                    log.exception("$disconnect failed")
            log.info("WS disconnected %s %s", connection_id, close_code)
        return socket

    async def ws_message(self, connection_id: str, conn: Connection, body: str, *, is_base64: bool) -> None:
        route_key = self._route_of(None if is_base64 else body)
        route = self.template.websocket_routes.get(route_key)
        if route is None:
            await self._send(conn, json.dumps({"message": "Forbidden", "connectionId": connection_id}))
            return
        event = self._ws_event(route_key, connection_id, conn, body=body, is_base64=is_base64)
        if not self.throttle.take():
            await self._send(
                conn,
                json.dumps(
                    {
                        "message": "Too Many Requests",
                        "connectionId": connection_id,
                        "requestId": event["requestContext"]["requestId"],
                    }
                ),
            )
            return
        try:
            result = await self.invoke(route.function, event)
        except Exception:
            log.exception("%s failed", route.function)
            context = event["requestContext"]
            await self._send(
                conn,
                json.dumps(
                    {
                        "message": "Internal server error",
                        "connectionId": connection_id,
                        "requestId": context["requestId"],
                    }
                ),
            )
            return
        if route.two_way and isinstance(result, dict) and result.get("body"):
            await self._send(conn, str(result["body"]))

    @staticmethod
    async def _send(conn: Connection, text: str) -> None:
        """A frame to the client, unless it has gone meanwhile (then there is nobody to tell)."""
        if not conn.socket.closed:
            with contextlib.suppress(ConnectionResetError):
                await conn.socket.send_str(text)

    # ------------------------------------------------------------------ @connections
    async def management(self, request: web.Request, connection_id: str) -> web.StreamResponse:
        if not request.headers.get("Authorization", "").startswith("AWS4-HMAC-SHA256"):
            # Only signed calls (IAM: execute-api:ManageConnections) reach it in AWS.
            return web.json_response({"message": "Missing Authentication Token"}, status=403)
        conn = self.connections.get(connection_id)
        if conn is None or conn.socket.closed:
            return web.json_response(
                {"message": None}, status=410, headers={"x-amzn-ErrorType": "GoneException"}
            )
        if request.method == "POST":
            if COUNT_AWS_CALLS:  # the opt-in counter: posts are signed HTTP calls, not boto3's
                with _aws_calls_lock:
                    _aws_calls["apigatewaymanagementapi.PostToConnection"] += 1
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
                return web.json_response(
                    {"message": None}, status=410, headers={"x-amzn-ErrorType": "GoneException"}
                )
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

    # ------------------------------------------------------------------ event source mapping
    def _checkpoint_file(self) -> Path:
        return self.state_dir / f"{self.region}.stream-checkpoint.json"

    def _load_checkpoint(self) -> str | None:
        try:
            saved = json.loads(self._checkpoint_file().read_text())
        except (OSError, ValueError):
            return None
        return saved.get("sequenceNumber") if saved.get("streamArn") == self.tables["stream"] else None

    def _save_checkpoint(self, sequence_number: str) -> None:
        path = self._checkpoint_file()
        path.with_suffix(".tmp").write_text(
            json.dumps({"streamArn": self.tables["stream"], "sequenceNumber": sequence_number})
        )
        path.with_suffix(".tmp").replace(path)

    async def poll_stream(self) -> None:
        mapping = self.template.stream
        streams = provision.client("dynamodbstreams", self.aws_endpoint, self.region)

        def open_reader() -> ShardReader:
            return ShardReader(
                streams,
                self.tables["stream"],
                starting_position=mapping.starting_position,
                checkpoint=self._load_checkpoint(),
            )

        reader: ShardReader | None = None
        while True:
            reader, records = await read_with_retries(open_reader, mapping.batch_size, reader)
            if not records:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.poke.wait(), timeout=self.poll_interval)
                self.poke.clear()
                continue
            batch = [lambda_record(r, self.region, self.tables["stream"]) for r in records]
            batch = [r for r in batch if passes_filters(r, mapping.filters)]
            if batch:
                await self.deliver(batch)
            last = records[-1]["dynamodb"]["SequenceNumber"]
            reader.commit(last)
            await asyncio.to_thread(self._save_checkpoint, last)

    async def deliver(self, batch: list[dict[str, Any]], attempt: int = 0) -> None:
        """Invoke the stream's function as an event source mapping would: retry from the lowest
        failed record, bisect a failing batch, give up after MaximumRetryAttempts."""
        mapping = self.template.stream
        while True:
            try:
                result = await self.invoke(mapping.function, {"Records": batch})
            except Exception:
                log.exception("%s failed on a batch of %d", mapping.function, len(batch))
                if mapping.bisect_on_error and len(batch) > 1:
                    half = len(batch) // 2
                    await self.deliver(batch[:half], attempt + 1)
                    await self.deliver(batch[half:], attempt + 1)
                    return
                failed_from: str = batch[0]["dynamodb"]["SequenceNumber"]
            else:
                failures = (
                    (result or {}).get("batchItemFailures") or []
                    if mapping.report_batch_item_failures
                    else []
                )
                if not failures:
                    return
                failed_from = min((f["itemIdentifier"] for f in failures), key=int)
            attempt += 1
            if 0 <= mapping.max_retries < attempt:
                log.error("discarding %d records after %d attempts", len(batch), attempt)
                return
            batch = [r for r in batch if int(r["dynamodb"]["SequenceNumber"]) >= int(failed_from)]
            await asyncio.sleep(min(0.05 * 2**attempt, 2.0))  # the mapping's retry backoff


async def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        await asyncio.sleep(1)
    log.warning("the stack supervisor is gone: stopping")
    os._exit(0)


async def serve(args: argparse.Namespace) -> None:
    region = Region(
        load(),
        args.region,
        args.aws_endpoint,
        args.host,
        Path(args.state_dir),
        args.poll_interval,
        args.http_port,
        args.ws_port,
    )
    http_app = web.Application(client_max_size=MAX_HTTP_BODY + 1)
    http_app.router.add_route("*", "/{tail:.*}", region.http)
    ws_app = web.Application()
    ws_app.router.add_route("*", "/{tail:.*}", region.websocket_or_management)
    http_runner, ws_runner = web.AppRunner(http_app, access_log=None), web.AppRunner(ws_app, access_log=None)
    await http_runner.setup()
    await ws_runner.setup()
    http_site = web.TCPSite(http_runner, args.host, args.http_port)
    ws_site = web.TCPSite(ws_runner, args.host, args.ws_port)
    await http_site.start()
    await ws_site.start()
    region.http_port = http_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    region.ws_port = ws_site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    region.configure(args.allowed_origin)
    tasks = [asyncio.create_task(region.poll_stream()), asyncio.create_task(_watch_parent(os.getppid()))]
    ready = {
        "region": region.region,
        "http": region.http_port,
        "ws": region.ws_port,
        "stage": region.stage,
        "pid": os.getpid(),
    }
    log.info("ready %s", json.dumps(ready))
    if args.ready_fd is not None:
        with os.fdopen(args.ready_fd, "w") as pipe:
            pipe.write(json.dumps(ready) + "\n")
    await asyncio.gather(*tasks)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--region", required=True)
    parser.add_argument("--aws-endpoint", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, default=0)
    parser.add_argument("--ws-port", type=int, default=0)
    parser.add_argument("--state-dir", default=".local")
    parser.add_argument("--poll-interval", type=float, default=0.1)
    parser.add_argument("--allowed-origin", default=None)
    parser.add_argument("--ready-fd", type=int, default=None)
    args = parser.parse_args(argv)
    if COUNT_AWS_CALLS:  # the opt-in counter, above: before any boto3 client is created
        boto3.setup_default_session()
        boto3.DEFAULT_SESSION.events.register("before-call", _count_aws_call)  # type: ignore[union-attr]
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format=f"%(asctime)s {args.region} %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()

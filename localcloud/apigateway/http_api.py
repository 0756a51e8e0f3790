"""API Gateway's HTTP API: the template's routes and CORS, each request turned into a payload
format 2.0 event for its function (a Lambda proxy integration) and the result into a response."""

from __future__ import annotations

import base64
import logging
import time
from typing import Any

from aiohttp import web

from localcloud.apigateway.events import http_event
from localcloud.lambda_.runtime import LambdaRuntime, TooManyRequestsException
from stack_definition.template import HttpRoute, Template

log = logging.getLogger("http-api")

MAX_HTTP_BODY = 10 * 1024 * 1024


class HttpApi:
    def __init__(self, template: Template, runtime: LambdaRuntime, *, api_id: str, cors: Any) -> None:
        self._routes = template.http_routes
        self._runtime = runtime
        self._api_id = api_id
        self._cors = cors if isinstance(cors, dict) else None  # the resolved CorsConfiguration

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_HTTP_BODY + 1)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        response = await self._handle(request)
        elapsed = (time.perf_counter() - started) * 1000
        log.info("HTTP %s %s %s %.1fms", request.method, request.path_qs, response.status, elapsed)
        return response

    def _cors_headers(self, request: web.Request) -> dict[str, str]:
        origin = request.headers.get("Origin")
        if not self._cors or not origin or origin not in self._cors.get("AllowOrigins", []):
            return {}
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        if self._cors.get("ExposeHeaders"):  # e.g. Retry-After, which a page may read only so
            headers["Access-Control-Expose-Headers"] = ",".join(self._cors["ExposeHeaders"])
        return headers

    def _route(self, method: str, path: str) -> tuple[HttpRoute, str, dict[str, str]] | None:
        for route, function_id in self._routes:
            params = route.match(method, path)
            if params is not None:
                return route, function_id, params
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        cors = self._cors_headers(request)
        if request.method == "OPTIONS" and self._cors and "Access-Control-Request-Method" in request.headers:
            if not cors:
                return web.Response(status=204)
            cors.update(
                {
                    "Access-Control-Allow-Methods": ",".join(self._cors.get("AllowMethods", [])),
                    "Access-Control-Allow-Headers": ",".join(self._cors.get("AllowHeaders", [])),
                    "Access-Control-Max-Age": str(self._cors.get("MaxAge", 0)),
                }
            )
            return web.Response(status=204, headers=cors)
        found = self._route(request.method, request.path)
        if found is None:
            return web.json_response({"message": "Not Found"}, status=404, headers=cors)
        route, function_id, params = found
        body = await request.read()
        if len(body) > MAX_HTTP_BODY:
            return web.json_response({"message": "Request Entity Too Large"}, status=413, headers=cors)
        event = http_event(
            api_id=self._api_id,
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
            result = await self._runtime.invoke(function_id, event)
        except Exception as error:
            # A function error, timeout or throttle: API Gateway answers its own bare 500.
            if isinstance(error, TooManyRequestsException):
                log.warning("%s", error)
            else:
                log.exception("%s failed", function_id)
            return web.json_response({"message": "Internal Server Error"}, status=500, headers=cors)
        return _response(result, cors)


def _response(result: Any, cors: dict[str, str]) -> web.Response:
    if not isinstance(result, dict) or "statusCode" not in result:
        return web.json_response(result, headers=cors)  # payload 2.0: a bare value is a 200 JSON body
    headers = {**{k: str(v) for k, v in (result.get("headers") or {}).items()}, **cors}
    raw = result.get("body") or ""
    data = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode()
    response = web.Response(status=int(result["statusCode"]), body=data, headers=headers)
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", cookie)
    return response

"""An opt-in counter of the AWS calls a region makes, for bench/cost.py (LOCALCLOUD_COUNT_AWS_CALLS=1).

Counts every botocore API call of the region's process (the handlers' and the event source
mapping's) by "service.Operation", the `@connections` posts it serves (the fan-out signs and
sends those itself, without boto3), and what else AWS bills that the region plays itself: each
WebSocket message to or from a client (`apigateway.WebSocketMessage`; a post is one too) and
each Lambda invocation (`lambda.Invoke:<function>`). Registered on boto3's default session before any client
exists, so every client inherits it. GET /_local/aws-calls on the WebSocket port reads the
counts; DELETE resets them.

A scheduled function runs on its own clock, not a user's: its invocations and the calls made in
them are counted apart, as `schedule.<name>` (the presence keeper's beats are a region's fixed
cost, never a message's or a connection's)."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

from aiohttp import web

ENABLED = os.environ.get("LOCALCLOUD_COUNT_AWS_CALLS") == "1"
_calls: Counter[str] = Counter()
_lock = threading.Lock()
APART = "schedule."
_apart: set[str] = set()  # functions whose calls are counted apart
invoking: ContextVar[str | None] = ContextVar("invoking", default=None)  # the function running here


def count_apart(functions: Iterable[str]) -> None:
    _apart.update(functions)


def count(name: str, *, function: str | None = None) -> None:
    if ENABLED:
        if (function or invoking.get()) in _apart:
            name = f"{APART}{name}"
        with _lock:
            _calls[name] += 1


def _count_botocore_call(model: Any, **_: Any) -> None:
    count(f"{model.service_model.service_name}.{model.name}")


def install() -> None:
    """Count from now on: before any boto3 client is created."""
    if ENABLED:
        import boto3

        boto3.setup_default_session()
        boto3.DEFAULT_SESSION.events.register("before-call", _count_botocore_call)  # type: ignore[union-attr]


def counts(*, reset: bool = False) -> dict[str, int]:
    """The counts so far; `reset` starts them again from zero."""
    with _lock:
        now = dict(_calls)
        if reset:
            _calls.clear()
    return now


async def handle(request: web.Request) -> web.Response:
    return web.json_response({"calls": counts(reset=request.method == "DELETE")})

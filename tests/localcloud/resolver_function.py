"""A function in powertools' idiom: one module-level resolver that holds the invocation's event."""

from __future__ import annotations

import threading
import time
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

app = APIGatewayHttpResolver()


@app.get("/slow/<name>")
def slow(name: str) -> dict[str, str]:
    time.sleep(0.02)  # long enough for another invocation to arrive meanwhile
    return {"name": name, "path": app.current_event.path}


TOGETHER = threading.Barrier(2)


@app.get("/together")
def together() -> dict[str, str]:
    """Answers only while another invocation is inside too (each waits for the other)."""
    # This module's barrier, not a container's own (a container loads the module again).
    from tests.localcloud.resolver_function import TOGETHER as shared

    shared.wait(timeout=30)
    return {"path": app.current_event.path}


@app.get("/fast")
def fast() -> dict[str, str]:
    return {"path": app.current_event.path}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)

"""One Logger, Metrics and tracer for the whole service (named by POWERTOOLS_* variables).

Tracing: Lambda's own active tracing (template.yaml) records every invocation. Subsegments for
each AWS call need powertools' Tracer, whose X-Ray SDK costs about as much at import as boto3
itself (it builds X-Ray clients for sampling rules), so it is loaded only when
POWERTOOLS_TRACE_DISABLED is not "true" (the template's TraceAwsCalls parameter). See
docs/performance.md for the figures.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
# API Gateway's request id, in HTTP and WebSocket events alike: the access logs carry it too.
API_REQUEST_ID = "requestContext.requestId"
metrics = Metrics()

Handler = TypeVar("Handler", bound=Callable[..., Any])

if os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() == "true":

    def traced(handler: Handler) -> Handler:
        return handler

else:
    from aws_lambda_powertools import Tracer

    _tracer = Tracer(patch_modules=("botocore",))  # only what the handlers call

    def traced(handler: Handler) -> Handler:
        # A handler's response holds message text and history pages: never X-Ray metadata.
        return cast(Handler, _tracer.capture_lambda_handler(handler, capture_response=False))


def lambda_handler(correlation_id_path: str | None = None) -> Callable[[Handler], Handler]:
    """Every entry point's one decorator stack: logs with the invocation's context (and the
    request id as correlation id where `correlation_id_path` finds one), metrics flushed at the
    end, and the tracer. `clear_state`: keys a handler appends (a connection or user id) never
    leak into the next invocation of the same container."""

    def decorate(handler: Handler) -> Handler:
        inject = logger.inject_lambda_context(correlation_id_path=correlation_id_path, clear_state=True)
        return cast(Handler, inject(metrics.log_metrics(traced(handler))))

    return decorate


def count(name: str, value: int = 1) -> None:
    if value:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)

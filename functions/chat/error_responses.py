"""The edge: the one table from the domain's errors to answers, used by every transport (the HTTP
API, the WebSocket frames' routes and `$connect`). Each transport only wraps the answer its way:
`{"error": {...}}` with the status on HTTP and `$connect`, an error frame on the WebSocket.

| raised | status | error | HTTP headers |
| --- | --- | --- | --- |
| ChatError (and kinds) | its `status` | its `to_json()` | 401: `WWW-Authenticate`; 429: `Retry-After` |
| StoreError | 503 | `unavailable` | |
| anything else (a defect) | 500 | `internal_error` | |

The two last are logged here, so no transport can forget it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from chat.errors import ChatError, RateLimited, StoreError, Unauthorized
from chat.observability import logger

UNAVAILABLE = {
    "code": "unavailable",
    "message": "this region could not reach its storage; retry, here or in another region",
}
INTERNAL_ERROR = {"code": "internal_error", "message": "the request failed and nothing was stored; retry it"}


@dataclass(frozen=True)
class ErrorAnswer:
    status: int
    error: dict[str, Any]  # `{"code", "message"}`, and `retryAfterMs` when rate limited
    headers: dict[str, str] = field(default_factory=dict)


def error_answer(error: Exception) -> ErrorAnswer:
    """The answer to an error that reached a handler's edge (nothing is re-raised)."""
    if isinstance(error, ChatError):
        headers = {}
        if isinstance(error, Unauthorized):
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(error, RateLimited) and error.retry_after_ms is not None:
            headers["Retry-After"] = str(math.ceil(error.retry_after_ms / 1000))
        return ErrorAnswer(error.status, error.to_json(), headers)
    if isinstance(error, StoreError):
        logger.warning("store unavailable", error=str(error))
        return ErrorAnswer(503, dict(UNAVAILABLE))
    logger.exception("handler failed", exc_info=error)
    return ErrorAnswer(500, dict(INTERNAL_ERROR))

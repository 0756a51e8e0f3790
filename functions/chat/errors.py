"""The errors the domain raises and hears: what the client caused or must hear about (`ChatError`,
each with a stable code and an HTTP status) and what a store could not do (`StoreError`). Adapters
raise these, so the domain never needs to know an AWS exception; chat/error_responses.py turns
them into answers, once for every transport."""

from __future__ import annotations

from typing import Any


class ChatError(Exception):
    """An error the client caused or must hear about, with a stable machine-readable code."""

    status = 400

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


class InvalidInput(ChatError):
    """Bad input: nothing was written."""


class TooLarge(InvalidInput):
    status = 413


class Unauthorized(ChatError):
    """No session, or one that is not ours, tampered with, expired, too old or signed out."""

    status = 401

    def __init__(self, message: str = "sign in: a valid session token is required") -> None:
        super().__init__("unauthorized", message)


class Forbidden(ChatError):
    status = 403


class RateLimited(ChatError):
    """Over a per-identity limit: nothing was stored; try again after `retry_after_ms` (when known)."""

    status = 429

    def __init__(self, message: str, *, retry_after_ms: int | None) -> None:
        super().__init__("rate_limited", message)
        self.retry_after_ms = retry_after_ms

    def to_json(self) -> dict[str, Any]:
        body = super().to_json()
        if self.retry_after_ms is not None:
            body["retryAfterMs"] = self.retry_after_ms
        return body


class NotFound(ChatError):
    """An edit or delete of a message the caller does not have (that id, that room, that
    author) in the region that answers."""

    status = 404

    def __init__(self) -> None:
        super().__init__("not_found", "you have no message with that id in this room")


class MessageDeleted(ChatError):
    """An edit of a deleted message: nothing changed."""

    status = 409

    def __init__(self) -> None:
        super().__init__("message_deleted", "that message was deleted: it cannot be edited")


class StoreError(Exception):
    """A store could not do what we asked (throttled, unavailable, misconfigured). Adapters raise
    it with their own error code (chat/aws_errors.py)."""

    def __init__(self, operation: str, code: str) -> None:
        super().__init__(f"{operation} failed: {code}")
        self.code = code

"""The chat's one message model and its one validation (BRIEF sections 2-4).

Plain Python on purpose: no pydantic, so importing a handler stays cheap (BRIEF section 7, cold start).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from chat import ulid

MAX_TEXT_CHARS = 4000
ROOM_PATTERN = re.compile(r"[a-z0-9-]{1,64}")
MAX_PAGE = 100
DEFAULT_PAGE = 50
# API Gateway's WebSocket message limit; a message of 4,000 characters, each escaped as a
# surrogate pair (12 bytes), is under half of it.
MAX_BODY_BYTES = 128 * 1024
# A message is one object of strings; the cap keeps json.loads far from the recursion limit.
MAX_DEPTH = 16
_LIMIT_PATTERN = re.compile(r"0*([0-9]{1,3})")  # ASCII digits: str.isdigit() accepts '²'
# A JSON string (an unterminated one runs to the end, matched in one pass) or a bracket.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)
_NESTING = {"[": 1, "{": 1, "]": -1, "}": -1}

Transport = Literal["websocket", "http"]


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


# Crockford's base32, lower case: no i, l, o or u, so a tag never holds a letter that looks like
# a digit or another letter.
TAG_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
TAG_CHARS = 4

UserKind = Literal["guest", "account"]


def user_tag(user_id: str) -> str:
    """Four characters of SHA-256(user id) in lower-case Crockford base32 (20 bits): what tells
    two people of one name apart. The same user has the same tag in every region and message."""
    bits = int.from_bytes(hashlib.sha256(user_id.encode()).digest()[:3]) >> (24 - 5 * TAG_CHARS)
    return "".join(TAG_ALPHABET[(bits >> shift) & 31] for shift in range(5 * (TAG_CHARS - 1), -1, -5))


def user_kind(user_id: str) -> UserKind:
    """`account` for an OpenID Connect account (`o_` ids); anyone else is a `guest`."""
    return "account" if user_id.startswith("o_") else "guest"


@dataclass(frozen=True)
class Author:
    """Who speaks: a session's user id and display name, never a request body's word."""

    user_id: str
    name: str


@dataclass(frozen=True)
class NewMessage:
    """A message as a client sent it, validated and normalised, before the server accepted it.
    Its author is never the client's word: the server adds the session's."""

    id: str
    room: str
    text: str


@dataclass(frozen=True)
class Message:
    """A stored message: the public shape of docs/api.md. Its author's tag and kind are derived
    from `authorId`, so messages stored before they existed carry them too."""

    id: str
    room: str
    author: str  # the session's display name
    authorId: str  # the session's user id: with the id, what makes a message unique
    text: str | None  # None once deleted
    sentAt: str
    acceptedRegion: str  # the region that accepted its latest change
    transport: str
    # 1 when posted, one more after each accepted edit or delete (chat/edits.py).
    version: int = 1
    editedAt: str | None = None
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "room": self.room,
            "author": self.author,
            "authorId": self.authorId,
            "authorTag": user_tag(self.authorId),
            "authorKind": user_kind(self.authorId),
            "text": self.text,
            "sentAt": self.sentAt,
            "acceptedRegion": self.acceptedRegion,
            "transport": self.transport,
            "version": self.version,
            "editedAt": self.editedAt,
            "deleted": self.deleted,
        }


@dataclass(frozen=True)
class Connection:
    connection_id: str
    room: str
    user_id: str


def iso_time(ms: int) -> str:
    """RFC 3339 UTC time with milliseconds, e.g. 2026-11-25T10:00:00.123Z."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _too_deep(text: str) -> bool:
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        depth += _NESTING.get(token.group(), 0)
        if depth > MAX_DEPTH:
            return True
    return False


def _not_json(constant: str) -> Any:
    raise InvalidInput("malformed_json", f"{constant} is not JSON")


def parse_json(raw: str | bytes) -> Any:
    """A frame's or body's JSON, parsed once, its size and depth capped before parsing.

    Numbers are read as floats: no message field is a number, and a float has no digit limit
    where int() refuses more than 4,300 digits."""
    size = len(raw) if isinstance(raw, bytes) else len(raw.encode("utf-8", "surrogatepass"))
    if size > MAX_BODY_BYTES:
        raise TooLarge("too_large", f"the message is {size} bytes; the limit is {MAX_BODY_BYTES}")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as error:
        raise InvalidInput("malformed_json", "the message is not UTF-8") from error
    if _too_deep(text):
        raise InvalidInput("too_deep", f"the JSON is nested more than {MAX_DEPTH} levels deep")
    try:
        return json.loads(text, parse_int=float, parse_constant=_not_json)
    except ValueError as error:
        raise InvalidInput("malformed_json", "the message is not valid JSON") from error


def string_field(payload: dict[str, Any], field: str) -> str:
    if field not in payload or payload[field] is None:
        raise InvalidInput("missing_field", f"'{field}' is required")
    value = payload[field]
    if isinstance(value, str):
        return value
    raise InvalidInput(f"invalid_{field}", f"'{field}' must be a string")


def _check_text_unicode(value: str) -> None:
    # json.loads accepts lone surrogates ("\ud800"); they cannot be stored as UTF-8.
    # Control characters other than tab and newline have no place in a chat line.
    for char in value:
        category = unicodedata.category(char)
        if category == "Cs":
            raise InvalidInput("invalid_text", "'text' is not valid Unicode (lone surrogate)")
        if category == "Cc" and char not in "\n\t":
            raise InvalidInput("invalid_text", "'text' contains a control character")


def validate_room(room: object) -> str:
    if not isinstance(room, str) or not ROOM_PATTERN.fullmatch(room):
        raise InvalidInput("invalid_room", "room must be 1-64 characters of a-z, 0-9 and '-'")
    return room


def validate_text(text: str) -> str:
    text = text.strip()
    if not text:
        raise InvalidInput("invalid_text", "text must not be empty")
    if len(text) > MAX_TEXT_CHARS:
        raise InvalidInput("text_too_long", f"text is {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
    _check_text_unicode(text)
    return text


def validate_id(message_id: str, *, now_ms: int, max_skew_ms: int) -> str:
    if not ulid.is_ulid(message_id):
        raise InvalidInput("invalid_id", "id must be a ULID: 26 upper-case Crockford base32 characters")
    skew = ulid.timestamp_ms(message_id) - now_ms
    if abs(skew) > max_skew_ms:
        raise InvalidInput(
            "id_out_of_range",
            f"the id's time is {skew / 1000:+.0f} s from the server's clock; "
            f"the limit is {max_skew_ms // 1000} s: make a new id",
        )
    return message_id


def parse_new_message(payload: Any, *, room: str | None = None, now_ms: int, max_skew_ms: int) -> NewMessage:
    """Validate a client's message. `room` comes from the URL for HTTP, from the body on WebSocket.
    A body's `author` is ignored: the author is the session's."""
    if not isinstance(payload, dict):
        raise InvalidInput("invalid_message", "the message must be a JSON object")
    message_id = string_field(payload, "id")
    text = string_field(payload, "text")
    room = validate_room(string_field(payload, "room") if room is None else room)
    return NewMessage(
        id=validate_id(message_id, now_ms=now_ms, max_skew_ms=max_skew_ms),
        room=room,
        text=validate_text(text),
    )


def parse_page(after: str | None, limit: str | None) -> tuple[str | None, int]:
    """Validate the history query string: `after` is any ULID, `limit` 1-100."""
    if after is not None and not ulid.is_ulid(after):
        raise InvalidInput("invalid_after", "'after' must be a message id (ULID)")
    if limit is None:
        return after, DEFAULT_PAGE
    digits = _LIMIT_PATTERN.fullmatch(limit)
    if digits is None or not 1 <= int(digits[1]) <= MAX_PAGE:
        raise InvalidInput("invalid_limit", f"'limit' must be a whole number from 1 to {MAX_PAGE}")
    return after, int(digits[1])

"""The chat's one validation: rooms, text, message ids, a new message and the history's paging
(the limits of docs/api.md). Every rule raises InvalidInput with the contract's code."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from chat import ulid
from chat.errors import InvalidInput
from chat.model import NewMessage

MAX_TEXT_CHARS = 4000
ROOM_PATTERN = re.compile(r"[a-z0-9-]{1,64}")
MAX_PAGE = 100
DEFAULT_PAGE = 50
_LIMIT_PATTERN = re.compile(r"0*([0-9]{1,3})")  # ASCII digits: str.isdigit() accepts '²'


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

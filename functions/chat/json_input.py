"""A client's JSON (a WebSocket frame or an HTTP body), parsed once with its size and depth capped
before parsing: `json.loads` raises RecursionError on deep nesting, and a huge body costs memory
before any rule could refuse it."""

from __future__ import annotations

import json
import re
from typing import Any

from chat.errors import InvalidInput, TooLarge

# API Gateway's WebSocket message limit; a message of 4,000 characters, each escaped as a
# surrogate pair (12 bytes), is under half of it.
MAX_BODY_BYTES = 128 * 1024
# A message is one object of strings; the cap keeps json.loads far from the recursion limit.
MAX_DEPTH = 16
# A JSON string (an unterminated one runs to the end, matched in one pass) or a bracket.
_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.DOTALL)
_NESTING = {"[": 1, "{": 1, "]": -1, "}": -1}


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

"""Property-based: whatever a client sends, every handler answers with a clear, documented error
or a success, never raises, never answers 500, and writes nothing for bad input.

The oracle is the public contract (docs/api.md), written out here on its own: a handler's answer
is checked against what the contract says about the very input that was drawn.
"""

from __future__ import annotations

import json
import math
import re
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from chat import ulid
from chat.handlers import http_api, ws_connect, ws_default, ws_send
from localcloud.lambda_.context import LambdaContext
from tests.integration.helpers import http, ws

# Fixtures are set up once per test, not per example: each example checks its own before/after.
SETTINGS = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])

# --- the contract, written out from docs/api.md --------------------------------------------------
API_MD = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
# The error-code table: | `code`[, `code`] | HTTP status or - | when |
DOCUMENTED: dict[str, str] = {
    code: status
    for names, status in re.findall(r"^\| (`[a-z_]+`(?:, `[a-z_]+`)*) \| (\d{3}|-) \|", API_MD, re.M)
    for code in re.findall(r"`([a-z_]+)`", names)
}
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID_RULE = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")
ROOM_RULE = re.compile(r"[a-z0-9-]{1,64}")
MAX_SKEW_S = 300


def contract_room(room: object) -> bool:
    return isinstance(room, str) and ROOM_RULE.fullmatch(room) is not None


def contract_text(text: object) -> bool:
    """1-4,000 characters after trimming, no lone surrogate, no control but tab and newline."""
    if not isinstance(text, str):
        return False
    body = text.strip()
    return (
        1 <= len(body) <= 4000
        and not any(unicodedata.category(c) == "Cs" for c in body)
        and not any(unicodedata.category(c) == "Cc" and c not in "\t\n" for c in body)
    )


def contract_id(message_id: object) -> bool:
    """A ULID whose time is within 5 minutes of now."""
    if not isinstance(message_id, str) or not ULID_RULE.fullmatch(message_id):
        return False
    ms = 0
    for c in message_id[:10]:
        ms = ms * 32 + CROCKFORD.index(c)
    return abs(ms / 1000 - time.time()) < MAX_SKEW_S


def contract_accepts(message: object) -> bool:
    return (
        isinstance(message, dict)
        and contract_room(message.get("room"))
        and contract_id(message.get("id"))
        and contract_text(message.get("text"))
    )


def assert_documented_error(code: str, http_status: int | None = None) -> None:
    """An error code the contract lists (with its HTTP status), and never the catch-all."""
    assert code in DOCUMENTED, f"{code!r} is not in docs/api.md"
    assert code != "internal_error"
    if http_status is not None:
        assert DOCUMENTED[code] == str(http_status), (code, http_status)


# --- what hostile clients send -------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
nasty_text = st.one_of(
    st.text(),
    st.just(""),
    st.just(" " * 10),
    st.text(min_size=3990, max_size=4100),
    st.sampled_from(
        [
            "<img src=x onerror=alert(1)>",
            "<script>alert(1)</script>",
            "e\u0301\u0301\u0301",
            "\u202eevil",
            "\ud800",
            "a\x00b",
            "tab\tand\nnewline",
            "🏳️‍🌈" * 1200,
            "\u200b" * 5000,
            "' OR 1=1 --",
            "${jndi:ldap://x}",
            "[" * 3000,  # brackets inside a string are text, not nesting
            '{"a":' * 1000,
        ]
    ),
)
fields = {
    "id": st.one_of(st.just("VALID"), st.just("OLD"), st.text(max_size=30), json_values),
    "room": st.one_of(
        st.just("hostile"), st.from_regex(ROOM_RULE, fullmatch=True), st.text(max_size=70), json_values
    ),
    "author": st.one_of(st.just("ada"), st.text(max_size=50), json_values),  # ignored: the session's
    "text": st.one_of(nasty_text, json_values),
}
messages = st.fixed_dictionaries({}, optional=fields)


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


# Bodies that are not a message: deep nesting (closed or not, at the top or in a field), numbers
# too big for int(), NaN and Infinity (Python's json accepts them; JSON does not), oversized bodies.
deep = st.integers(min_value=1, max_value=6000)
hostile_bodies = st.one_of(
    st.text(),
    st.binary().map(lambda b: b.decode("latin-1")),
    json_values.map(json.dumps),
    deep.map(lambda n: "[" * n),
    deep.map(nested),
    deep.map(lambda n: '{"action": "sendMessage", "text": ' + nested(n) + "}"),
    deep.map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.integers(min_value=4000, max_value=20000).map(lambda n: '{"id": ' + "9" * n + "}"),
    st.sampled_from(["NaN", "Infinity", "-Infinity", '{"text": NaN}', '{"id": 1e999}', "1" * 5000]),
    st.integers(min_value=128 * 1024 - 20, max_value=300_000).map(lambda n: '{"text": "' + "x" * n + '"}'),
)


def concrete(message: dict[str, Any]) -> dict[str, Any]:
    replace = {"VALID": ulid.new(), "OLD": ulid.new(0)}
    return {k: replace.get(v, v) if isinstance(v, str) else v for k, v in message.items()}


@pytest.fixture
def stored_count(aws_endpoint: str, tables: dict[str, Any]) -> Callable[[], int]:
    """Every message stored in us-east-1, in any room: bad input must write nothing anywhere."""
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=aws_endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )

    def count() -> int:
        total = 0
        query: dict[str, Any] = {"TableName": tables["us-east-1"]["messages"], "Select": "COUNT"}
        while True:
            page = client.scan(**query)
            total += page["Count"]
            if "LastEvaluatedKey" not in page:
                return total
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    return count


def ws_answer(handler: Callable[..., dict[str, Any]], body: str, context: LambdaContext) -> dict[str, Any]:
    route = "$default" if handler is ws_default.handler else "sendMessage"
    response = handler(ws(route, "c1", body=body), context)
    assert response["statusCode"] == 200  # an error frame, never an exception or a bare 500
    frame: dict[str, Any] = json.loads(response["body"])
    if frame["type"] == "error":
        assert frame["message"]
        assert_documented_error(frame["code"])
    return frame


def is_json(value: Any) -> bool:
    """Whether json.dumps writes standard JSON for it (NaN and Infinity are not JSON)."""
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


@SETTINGS
@given(message=messages)
@example(message={"id": "VALID", "room": math.inf})  # json.dumps writes Infinity: not JSON
def test_any_websocket_message_is_acked_exactly_when_the_contract_accepts_it(
    in_region: Callable[..., None],
    context: LambdaContext,
    stored_count: Callable[[], int],
    message: dict[str, Any],
) -> None:
    in_region("us-east-1")
    body = concrete(message)
    before = stored_count()
    frame = ws_answer(ws_send.handler, json.dumps({"action": "sendMessage", **body}), context)
    if not is_json(body):  # a drawn float became NaN or Infinity: no id can be read from that frame
        assert (frame["type"], frame["code"], frame["id"]) == ("error", "malformed_json", None)
        assert stored_count() == before
    elif contract_accepts(body):
        assert frame == {"type": "ack", "id": body["id"], "acceptedRegion": "us-east-1"}
        assert stored_count() == before + 1
    else:
        assert frame["type"] == "error"
        assert frame["id"] == (body["id"] if isinstance(body.get("id"), str) else None)
        assert stored_count() == before


@SETTINGS
@given(raw=hostile_bodies)
def test_any_frame_gets_an_ack_or_a_documented_error_frame_and_only_an_ack_writes(
    in_region: Callable[..., None], context: LambdaContext, stored_count: Callable[[], int], raw: str
) -> None:
    in_region("us-east-1")
    before = stored_count()
    assert ws_answer(ws_default.handler, raw, context)["type"] == "error"
    assert stored_count() == before
    if ws_answer(ws_send.handler, raw, context)["type"] == "ack":
        assert contract_accepts(json.loads(raw))
        assert stored_count() == before + 1
    else:
        assert stored_count() == before


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("[" * 5000, "too_deep"),
        (nested(3000), "too_deep"),
        ('{"action": "sendMessage", "id": "X1", "text": ' + nested(3000) + "}", "too_deep"),
        ('{"action": "sendMessage", "text": "' + "x" * 200_000 + '"}', "too_large"),
        ('{"action": "sendMessage", "id": ' + "9" * 5000 + "}", "invalid_id"),
        ('{"action": "sendMessage", "text": NaN}', "malformed_json"),
        ("Infinity", "malformed_json"),
    ],
    ids=["5000-brackets", "nested-3000", "field-nested-3000", "200-kb", "5000-digit-id", "nan", "infinity"],
)
def test_deep_huge_and_non_json_frames_get_their_error_frame_on_every_route(
    in_region: Callable[..., None],
    context: LambdaContext,
    stored_count: Callable[[], int],
    raw: str,
    code: str,
) -> None:
    in_region("us-east-1")
    before = stored_count()
    assert ws_answer(ws_send.handler, raw, context)["code"] == code
    default_code = ws_answer(ws_default.handler, raw, context)["code"]
    assert default_code == (code if code != "invalid_id" else "unknown_action")
    assert stored_count() == before


@pytest.mark.parametrize("raw", ["[]", '["sendMessage"]', '"sendMessage"', "42", "null", "true"])
def test_json_that_is_not_an_object_gets_invalid_message_on_the_default_route(
    in_region: Callable[..., None], context: LambdaContext, raw: str
) -> None:
    in_region("us-east-1")
    frame = ws_answer(ws_default.handler, raw, context)
    assert (frame["code"], frame["message"]) == ("invalid_message", "the frame must be a JSON object")


@SETTINGS
@given(query=st.dictionaries(st.sampled_from(["room", "author", "x"]), st.text(max_size=80), max_size=3))
@example(query={"room": "hostile", "author": "a\tb"})
def test_a_connection_is_accepted_exactly_when_its_room_is_valid_whatever_author_it_names(
    in_region: Callable[..., None], context: LambdaContext, query: dict[str, str]
) -> None:
    in_region("us-east-1")
    response = ws_connect.handler(ws("$connect", "c-hostile", query=query), context)
    if contract_room(query.get("room")):
        assert response["statusCode"] == 200
    else:
        assert response["statusCode"] == 400
        assert_documented_error(json.loads(response["body"])["error"]["code"], 400)


header_names = st.sampled_from(
    ["content-type", "content-length", "content-encoding", "accept-encoding", "origin", "cookie", "x-y"]
)


@SETTINGS
@given(
    room=st.text(max_size=70),
    body=st.one_of(
        st.binary(max_size=200),
        json_values.map(lambda v: json.dumps(v).encode()),
        messages.map(lambda m: json.dumps(concrete(m)).encode()),
        hostile_bodies.map(lambda raw: raw.encode("utf-8", "surrogatepass")),
    ),
    headers=st.lists(st.tuples(header_names, st.text(max_size=40)), max_size=3),
)
def test_any_http_post_gets_a_json_answer_never_a_500_and_only_a_success_writes(
    in_region: Callable[..., None],
    context: LambdaContext,
    token_for: Callable[..., str],
    stored_count: Callable[[], int],
    room: str,
    body: bytes,
    headers: list[tuple[str, str]],
) -> None:
    in_region("us-east-1")
    path_room = quote(room, safe="") or "x"  # what the route's {room} holds: the oracle's room too
    before = stored_count()
    response = http_api.handler(
        http(
            "POST",
            f"/rooms/{path_room}/messages",
            route="POST /rooms/{room}/messages",
            params={"room": path_room},
            body=body,
            headers=headers,
            token=token_for(),
        ),
        context,
    )
    answer = json.loads(response["body"])
    try:
        payload = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        payload = None
    if isinstance(payload, dict) and contract_accepts({**payload, "room": path_room}):
        assert response["statusCode"] in (200, 201)
        assert answer["room"] == path_room
        assert stored_count() == before + (response["statusCode"] == 201)
    else:
        assert set(answer["error"]) == {"code", "message"}
        assert_documented_error(answer["error"]["code"], response["statusCode"])
        assert stored_count() == before


# Numbers by ASCII pattern: str.isdigit() accepts '²', Arabic-Indic and full-width digits.
limits = st.one_of(st.none(), st.text(max_size=6), st.integers(-5, 200).map(str))


@SETTINGS
@given(after=st.one_of(st.none(), st.text(max_size=30), st.just(ulid.new())), limit=limits)
@example(after=None, limit="²")
@example(after=None, limit="٣")
@example(after=None, limit="１０")
@example(after=None, limit="1,2")  # a repeated ?limit=1&limit=2, as API Gateway joins it
@example(after=None, limit="9" * 5000)
def test_any_history_query_gets_a_page_exactly_when_after_and_limit_are_valid(
    in_region: Callable[..., None],
    context: LambdaContext,
    token_for: Callable[..., str],
    after: str | None,
    limit: str | None,
) -> None:
    in_region("us-east-1")
    params = {k: v for k, v in {"after": after, "limit": limit}.items() if v is not None}
    response = http_api.handler(
        http(
            "GET",
            "/rooms/hostile/messages",
            route="GET /rooms/{room}/messages",
            params={"room": "hostile"},
            query="&".join(f"{k}={quote(v, safe='')}" for k, v in params.items()),
            token=token_for(),
        ),
        context,
    )
    answer = json.loads(response["body"])
    after_ok = after is None or ULID_RULE.fullmatch(after) is not None
    limit_ok = limit is None or re.fullmatch(r"0*(?:[1-9][0-9]?|100)", limit) is not None
    if after_ok and limit_ok:
        assert response["statusCode"] == 200
        assert answer["region"] == "us-east-1"
        assert len(answer["messages"]) <= (int(limit) if limit else 50)
    else:
        assert response["statusCode"] == 400
        assert answer["error"]["code"] == ("invalid_after" if not after_ok else "invalid_limit")

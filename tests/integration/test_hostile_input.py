"""Property-based: whatever a client sends, every handler answers with a clear error or a
success, never raises, and writes nothing for bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat import ulid
from chat.handlers import http_api, ws_connect, ws_default, ws_send
from localcloud.events import LambdaContext
from tests.integration.helpers import http, ws

ROOM = "hostile"
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

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
            "🏳️‍🌈" * 1200,
            "\u200b" * 5000,
            "' OR 1=1 --",
            "${jndi:ldap://x}",
        ]
    ),
)
fields = {
    "id": st.one_of(st.just("VALID"), st.just("OLD"), st.text(max_size=30), json_values),
    "room": st.one_of(st.just(ROOM), st.text(max_size=70), json_values),
    "author": st.one_of(st.just("ada"), st.text(max_size=50), json_values),
    "text": st.one_of(nasty_text, json_values),
}
messages = st.fixed_dictionaries({}, optional=fields)


def concrete(message: dict[str, Any]) -> dict[str, Any]:
    replace = {"VALID": ulid.new(), "OLD": ulid.new(0)}
    return {k: replace.get(v, v) if isinstance(v, str) else v for k, v in message.items()}


def valid(message: dict[str, Any]) -> bool:
    text, author = message.get("text"), message.get("author")
    return (
        message.get("room") == ROOM
        and isinstance(message.get("id"), str)
        and ulid.is_ulid(message["id"])
        and isinstance(author, str)
        and 1 <= len(author.strip()) <= 40
        and isinstance(text, str)
        and 1 <= len(text.strip()) <= 4000
        and not any(c in text or c in author for c in "\ud800\x00")
        and abs(ulid.timestamp_ms(message["id"]) / 1000 - __import__("time").time()) < 300
    )


@pytest.fixture
def stored_count(aws_endpoint: str, tables: dict[str, Any]) -> Callable[[], int]:
    client = boto3.client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=aws_endpoint,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )

    def count() -> int:
        return int(
            client.query(
                TableName=tables["us-east-1"]["messages"],
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": f"room#{ROOM}"}},
                Select="COUNT",
            )["Count"]
        )

    return count


@SETTINGS
@given(message=messages)
def test_any_websocket_message_gets_an_ack_or_an_error_frame_and_bad_ones_write_nothing(
    in_region: Callable[..., None],
    context: LambdaContext,
    stored_count: Callable[[], int],
    message: dict[str, Any],
) -> None:
    in_region("us-east-1")
    body = concrete(message)
    before = stored_count()
    response = ws_send.handler(
        ws("sendMessage", "c1", body=json.dumps({"action": "sendMessage", **body})), context
    )
    assert response["statusCode"] == 200
    frame = json.loads(response["body"])
    if frame["type"] == "error":
        assert frame["message"]
        assert frame["code"] not in ("", "internal_error")
        assert stored_count() == before
    else:
        assert frame["type"] == "ack"
        assert valid(body)
        assert stored_count() == before + 1


@SETTINGS
@given(raw=st.one_of(st.text(), st.binary().map(lambda b: b.decode("latin-1")), json_values.map(json.dumps)))
def test_any_frame_on_the_default_route_gets_an_error_frame(
    in_region: Callable[..., None], context: LambdaContext, raw: str
) -> None:
    in_region("us-east-1")
    for handler in (ws_default.handler, ws_send.handler):
        response = handler(ws("$default", "c1", body=raw), context)
        assert response["statusCode"] == 200
        frame = json.loads(response["body"])
        assert frame["type"] in ("error", "ack")
        assert frame.get("code") != "internal_error"


@SETTINGS
@given(query=st.dictionaries(st.sampled_from(["room", "author", "x"]), st.text(max_size=80), max_size=3))
def test_any_connect_query_is_accepted_only_when_valid(
    in_region: Callable[..., None], context: LambdaContext, query: dict[str, str]
) -> None:
    in_region("us-east-1")
    response = ws_connect.handler(ws("$connect", "c-hostile", query=query), context)
    assert response["statusCode"] in (200, 400)
    if response["statusCode"] == 400:
        assert json.loads(response["body"])["error"]["code"]


@SETTINGS
@given(
    room=st.text(max_size=70),
    body=st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())),
)
def test_any_http_post_gets_a_json_answer_and_never_a_500(
    in_region: Callable[..., None], context: LambdaContext, room: str, body: bytes
) -> None:
    in_region("us-east-1")
    path_room = room.replace("/", "%2F") or "x"
    response = http_api.handler(
        http(
            "POST",
            f"/rooms/{path_room}/messages",
            route="POST /rooms/{room}/messages",
            params={"room": path_room},
            body=body,
        ),
        context,
    )
    # 404: a room segment the router cannot match (e.g. '#'): still the JSON error shape.
    assert response["statusCode"] in (200, 201, 400, 404)
    answer = json.loads(response["body"])
    if response["statusCode"] >= 400:
        assert set(answer["error"]) == {"code", "message"}


@SETTINGS
@given(after=st.one_of(st.none(), st.text(max_size=30)), limit=st.one_of(st.none(), st.text(max_size=6)))
def test_any_history_query_gets_a_page_or_a_400(
    in_region: Callable[..., None], context: LambdaContext, after: str | None, limit: str | None
) -> None:
    in_region("us-east-1")
    params = {k: v for k, v in {"after": after, "limit": limit}.items() if v is not None}
    query = "&".join(f"{k}={v}" for k, v in params.items() if "&" not in v and "=" not in v)
    response = http_api.handler(
        http(
            "GET",
            f"/rooms/{ROOM}/messages",
            route="GET /rooms/{room}/messages",
            params={"room": ROOM},
            query=query,
        ),
        context,
    )
    assert response["statusCode"] in (200, 400)
    assert json.loads(response["body"])

"""The HTTP API handler through powertools' resolver, with HTTP API payload 2.0 events."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from chat import ulid
from chat.handlers import http_api
from chat.model import user_tag
from localcloud.lambda_.context import LambdaContext
from tests.integration.helpers import ADA, http

MESSAGES_ROUTE = "/rooms/{room}/messages"


def call(event: dict[str, Any], context: LambdaContext) -> tuple[int, dict[str, Any]]:
    response = http_api.handler(event, context)
    assert response["headers"]["Content-Type"] == "application/json"
    return response["statusCode"], json.loads(response["body"])


def post(room: str, body: Any, context: LambdaContext, token: str | None) -> tuple[int, dict[str, Any]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    event = http(
        "POST",
        f"/rooms/{room}/messages",
        route=f"POST {MESSAGES_ROUTE}",
        params={"room": room},
        body=raw,
        token=token,
    )
    return call(event, context)


def history(
    room: str, context: LambdaContext, token: str | None, query: str = ""
) -> tuple[int, dict[str, Any]]:
    event = http(
        "GET",
        f"/rooms/{room}/messages",
        route=f"GET {MESSAGES_ROUTE}",
        params={"room": room},
        query=query,
        token=token,
    )
    return call(event, context)


@pytest.fixture
def ada(token_for: Callable[..., str]) -> str:
    return token_for(ADA)


def test_health_reports_ok_and_the_region(in_region: Callable[..., None], context: LambdaContext) -> None:
    in_region("eu-west-2")
    status, body = call(http("GET", "/health", route="GET /health"), context)
    assert status == 200
    assert body["status"] == "ok"
    assert body["region"] == "eu-west-2"


def test_health_is_503_and_names_the_failing_table_when_a_table_is_missing(
    in_region: Callable[..., None], context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_region("us-east-1")
    monkeypatch.setenv("CONNECTIONS_TABLE", "gone-table")
    from chat import composition

    composition.reset()
    status, body = call(http("GET", "/health", route="GET /health"), context)
    assert status == 503
    assert body["status"] == "unhealthy"
    assert body["region"] == "us-east-1"
    assert body["failing"] == "connectionsTable"


def test_posting_a_message_returns_201_then_200_for_the_retry(
    in_region: Callable[..., None], context: LambdaContext, ada: str
) -> None:
    in_region("us-east-1")
    message = {"id": ulid.new(), "text": "over http"}
    status, stored = post("http-post", message, context, ada)
    assert status == 201
    assert stored == {
        **message,
        "room": "http-post",
        "author": ADA["name"],
        "authorId": ADA["userId"],
        "authorTag": user_tag(ADA["userId"]),
        "authorKind": "guest",
        "sentAt": stored["sentAt"],
        "acceptedRegion": "us-east-1",
        "transport": "http",
        "version": 1,
        "editedAt": None,
        "deleted": False,
    }
    status, again = post("http-post", message, context, ada)
    assert (status, again) == (200, stored)


@pytest.mark.parametrize(
    ("room", "body", "code"),
    [
        ("http-bad", b"{oops", "malformed_json"),
        ("http-bad", {"text": "t"}, "missing_field"),
        ("http-bad", {"id": "@", "text": "x" * 4001}, "text_too_long"),
        ("http-bad", {"id": "@", "text": ""}, "invalid_text"),
        ("HTTP_BAD", {"id": "@", "text": "t"}, "invalid_room"),
        ("http-bad", {"id": ulid.new(1), "text": "t"}, "id_out_of_range"),
    ],
)
def test_bad_posts_get_a_4xx_with_an_error_body_and_write_nothing(
    in_region: Callable[..., None], context: LambdaContext, ada: str, room: str, body: Any, code: str
) -> None:
    in_region("us-east-1")
    if isinstance(body, dict) and body.get("id") == "@":
        body["id"] = ulid.new()
    status, error = post(room, body, context, ada)
    assert status == 400
    assert error["error"]["code"] == code
    assert error["error"]["message"]
    assert history("http-bad", context, ada)[1]["messages"] == []


def test_history_pages_oldest_first_and_reports_the_region(
    in_region: Callable[..., None], context: LambdaContext, ada: str
) -> None:
    in_region("eu-west-2")
    ids = sorted(ulid.new() for _ in range(5))
    for message_id in reversed(ids):
        assert post("http-history", {"id": message_id, "text": message_id}, context, ada)[0] == 201
    status, first = history("http-history", context, ada, "limit=3")
    assert status == 200
    assert [m["id"] for m in first["messages"]] == ids[:3]
    assert first["region"] == "eu-west-2"
    assert first["next"] == ids[2]
    _, rest = history("http-history", context, ada, f"after={first['next']}&limit=3")
    assert [m["id"] for m in rest["messages"]] == ids[3:]
    assert rest["next"] is None


@pytest.mark.parametrize(("query", "code"), [("limit=0", "invalid_limit"), ("after=x", "invalid_after")])
def test_bad_history_queries_get_400(
    in_region: Callable[..., None], context: LambdaContext, ada: str, query: str, code: str
) -> None:
    in_region("us-east-1")
    status, body = history("http-history", context, ada, query)
    assert status == 400
    assert body["error"]["code"] == code


def test_an_unknown_path_reaching_the_function_gets_api_gateways_own_404(
    in_region: Callable[..., None], context: LambdaContext
) -> None:
    in_region("us-east-1")
    status, body = call(http("GET", "/nope", route="$default"), context)
    assert status == 404
    assert body == {"message": "Not Found"}


@pytest.mark.parametrize("segment", ['a"b', "caf%C3%A9!", "%22%3E"])
def test_a_room_segment_the_router_cannot_match_is_a_bad_room_not_a_missing_route(
    in_region: Callable[..., None], context: LambdaContext, ada: str, segment: str
) -> None:
    in_region("us-east-1")
    status, body = call(
        http("GET", f"/rooms/{segment}/messages", route="GET /rooms/{room}/messages", token=ada), context
    )
    assert status == 400
    assert body["error"]["code"] == "invalid_room"


def test_a_users_id_is_logged_with_their_request_and_never_carried_into_the_next(
    in_region: Callable[..., None], context: LambdaContext, ada: str
) -> None:
    from chat.observability import logger

    in_region("us-east-1")
    assert history("http-keys", context, ada)[0] == 200
    assert logger.get_current_keys()["user_id"] == ADA["userId"]
    call(http("GET", "/health", route="GET /health"), context)  # the container's next invocation
    assert "user_id" not in logger.get_current_keys()

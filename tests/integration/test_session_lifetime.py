"""Sessions that end, through the real handlers against moto: a session past its maximum age is
refused however current its token, and a sign-out (DELETE /session) is refused by the rooms
routes, renewal and the $connect authorizer of its region at once."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from chat import composition, sessions
from chat.handlers import http_api, ws_authorizer
from localcloud.lambda_.context import LambdaContext
from tests.integration.helpers import ADA, authorizer_event, http

ROUTE = "GET /rooms/{room}/messages"


def call(method: str, path: str, route: str, token: str | None, body: Any = None) -> tuple[int, str]:
    event = http(
        method,
        path,
        route=route,
        params={"room": "lobby"} if "{room}" in route else None,
        body=json.dumps(body).encode() if body is not None else b"",
        token=token,
    )
    response = http_api.handler(event, LambdaContext("test-function", "us-east-1", 256, 10))
    return response["statusCode"], response.get("body") or ""


def uses(token: str) -> dict[str, int]:
    """What the region answers this token: a rooms read, a renewal, a handshake."""
    read, _ = call("GET", "/rooms/lobby/messages", ROUTE, token)
    renewal, _ = call("POST", "/session", "POST /session", token, body={})
    try:
        ws_authorizer.handler(authorizer_event(token), LambdaContext("authorizer", "us-east-1", 256, 10))
        handshake = 200
    except Exception as refusal:  # noqa: BLE001 - API Gateway's one word for a 401 is an Exception
        handshake = 401 if str(refusal) == "Unauthorized" else 500
    return {"read": read, "renewal": renewal, "handshake": handshake}


def token_begun(session_secret: str, *, ago: int) -> str:
    now = int(time.time())
    session = sessions.Session(
        ADA["userId"], ADA["name"], now + 600, session_id=sessions.new_session_id(), started_at=now - ago
    )
    return sessions.sign(session, sessions.SigningKeys.from_secret(session_secret), now=now)


def test_given_a_session_past_its_maximum_age_then_its_current_token_is_refused_everywhere_in_the_region(
    in_region: Callable[..., None], monkeypatch: pytest.MonkeyPatch, session_secret: str
) -> None:
    # given a stack whose sessions last at most two minutes from sign-in
    in_region("us-east-1")
    monkeypatch.setenv("MAX_SESSION_AGE_SECONDS", "120")
    composition.reset()
    # then a token of a session that began 100 s ago works, renewal included
    assert uses(token_begun(session_secret, ago=100)) == {"read": 200, "renewal": 201, "handshake": 200}
    # and one whose session began 130 s ago, though its token is ten minutes from expiry, does not
    assert uses(token_begun(session_secret, ago=130)) == {"read": 401, "renewal": 401, "handshake": 401}


def test_a_renewed_token_never_expires_past_the_sessions_maximum_age(
    in_region: Callable[..., None], monkeypatch: pytest.MonkeyPatch, session_secret: str
) -> None:
    in_region("us-east-1")
    monkeypatch.setenv("MAX_SESSION_AGE_SECONDS", "120")
    composition.reset()
    status, body = call("POST", "/session", "POST /session", token_begun(session_secret, ago=100), body={})
    assert status == 201
    renewed = json.loads(body)["token"]
    keys = sessions.SigningKeys.from_secret(session_secret)
    session = sessions.verify(renewed, keys, now=int(time.time()), max_age_seconds=120)
    assert session.expires_at == session.started_at + 120


def test_given_a_sign_out_then_the_region_refuses_the_session_at_once(
    in_region: Callable[..., None], token_for: Callable[..., str]
) -> None:
    # given a session, renewed once, both good
    in_region("eu-west-2")
    first = token_for(ADA)
    status, body = call("POST", "/session", "POST /session", first, body={})
    renewed = json.loads(body)["token"]
    assert uses(first)["read"] == uses(renewed)["read"] == 200
    # when the first token signs out
    status, body = call("DELETE", "/session", "DELETE /session", first)
    # then 204 with no body, and both tokens are refused by every way in
    assert (status, body) == (204, "")
    for token in (first, renewed):
        assert uses(token) == {"read": 401, "renewal": 401, "handshake": 401}
    _, body = call("GET", "/rooms/lobby/messages", ROUTE, renewed)
    assert json.loads(body)["error"]["code"] == "unauthorized"
    assert "signed out" in json.loads(body)["error"]["message"]
    # and signing out again is refused like any other use
    assert call("DELETE", "/session", "DELETE /session", renewed)[0] == 401
    # while another session is untouched
    assert uses(token_for(ADA))["read"] == 200

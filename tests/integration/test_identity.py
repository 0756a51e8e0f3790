"""Identity and integrity through the real handlers against moto (Secrets Manager and DynamoDB):
sessions, 401s, the author taken from the session, per-author idempotency across regions, the
per-user rate limit and connection cap, and the $connect authorizer."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from chat import ulid
from chat.handlers import http_api, ws_authorizer, ws_connect, ws_disconnect, ws_send
from chat.rate_limiter import DynamoRateLimiter
from localcloud.apigateway.events import new_connection_id
from localcloud.lambda_.context import LambdaContext
from tests.integration.helpers import ADA, authorizer_event, frame_of, http, send_frame, ws

EVE = {"userId": "g_EVE0000000000000000000000", "name": "Eve"}
ROUTE = "/rooms/{room}/messages"


def call(event: dict[str, Any], context: LambdaContext) -> tuple[int, dict[str, Any], dict[str, str]]:
    response = http_api.handler(event, context)
    return response["statusCode"], json.loads(response["body"]), response.get("headers", {})


def new_session(
    context: LambdaContext, body: Any, *, token: str | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return call(http("POST", "/session", route="POST /session", body=raw, token=token), context)


def post(
    room: str, body: dict[str, Any], context: LambdaContext, token: str | None, headers: Any = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    event = http(
        "POST",
        f"/rooms/{room}/messages",
        route=f"POST {ROUTE}",
        params={"room": room},
        body=json.dumps(body).encode(),
        token=token,
        headers=headers,
    )
    return call(event, context)


def history(
    room: str, context: LambdaContext, token: str | None, query: str = ""
) -> tuple[int, dict[str, Any]]:
    event = http(
        "GET",
        f"/rooms/{room}/messages",
        route=f"GET {ROUTE}",
        params={"room": room},
        query=query,
        token=token,
    )
    status, body, _ = call(event, context)
    return status, body


def items(aws_endpoint: str, region: str, table: str, room: str) -> list[dict[str, Any]]:
    client = boto3.client("dynamodb", region_name=region, endpoint_url=aws_endpoint)
    found: list[dict[str, Any]] = client.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"room#{room}"}},
    )["Items"]
    return found


# --- POST /session ---------------------------------------------------------------------------------


def test_a_guest_session_opens_the_rooms_in_both_regions(
    in_region: Callable[..., None], context: LambdaContext
) -> None:
    in_region("us-east-1")
    status, session, _ = new_session(context, {"name": "  Ada  "})
    assert status == 201
    assert set(session) == {"token", "user", "expiresAt"}
    assert session["user"]["name"] == "Ada"
    assert session["user"]["id"].startswith("g_")
    assert session["expiresAt"].endswith("Z")
    in_region("eu-west-2")  # its own replica of the key verifies a session signed in us-east-1
    status, page = history("id-open", context, session["token"])
    assert (status, page["region"]) == (200, "eu-west-2")


def test_renewal_returns_a_new_token_for_the_same_user(
    in_region: Callable[..., None], context: LambdaContext
) -> None:
    in_region("us-east-1")
    _, first, _ = new_session(context, {"name": "Ada"})
    in_region("eu-west-2")
    status, renewed, _ = new_session(context, {}, token=first["token"])
    assert status == 201
    assert renewed["user"] == first["user"]
    status, renamed, _ = new_session(context, {"name": "Ada L."}, token=renewed["token"])
    assert renamed["user"] == {**first["user"], "name": "Ada L."}  # the same id, tag and kind


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{oops", 400, "malformed_json"),
        ({}, 400, "missing_field"),
        ({"name": "\u202enimda"}, 400, "invalid_name"),
        ({"name": "ada\u200b"}, 400, "invalid_name"),
        ({"name": "\u200b\u200b"}, 400, "invalid_name"),
        ({"name": "\u3164"}, 400, "invalid_name"),
        ({"name": "x" * 41}, 400, "invalid_name"),
        ({"name": 7}, 400, "invalid_name"),
        ([], 400, "invalid_message"),
        ({"idToken": "eyJ.x.y"}, 403, "oidc_sign_in_disabled"),
    ],
)
def test_a_sign_in_that_cannot_be_honoured_gets_its_error(
    in_region: Callable[..., None], context: LambdaContext, body: Any, status: int, code: str
) -> None:
    in_region("us-east-1")
    got, answer, _ = new_session(context, body)
    assert (got, answer["error"]["code"]) == (status, code)
    assert answer["error"]["message"]


def test_guest_sign_in_can_be_turned_off(
    in_region: Callable[..., None], context: LambdaContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_region("us-east-1")
    monkeypatch.setenv("GUEST_SIGN_IN", "false")
    from chat import composition

    composition.reset()
    status, answer, _ = new_session(context, {"name": "Ada"})
    assert (status, answer["error"]["code"]) == (403, "guest_sign_in_disabled")


# --- no way in without a session ---------------------------------------------------------------------


def tampered(token: str) -> str:
    header, claims, signature = token.split(".")
    return f"{header}.{claims}.{signature[::-1]}"


@pytest.mark.parametrize("kind", ["missing", "junk", "tampered", "expired", "not bearer"])
def test_the_rooms_answer_401_without_a_valid_session_and_write_nothing(
    in_region: Callable[..., None],
    context: LambdaContext,
    token_for: Callable[..., str],
    aws_endpoint: str,
    tables: dict[str, Any],
    kind: str,
) -> None:
    in_region("us-east-1")
    token = {
        "missing": None,
        "junk": "junk",
        "tampered": tampered(token_for()),
        "expired": token_for(ttl=-120),
        "not bearer": None,
    }[kind]
    headers = [("authorization", f"Basic {token_for()}")] if kind == "not bearer" else None
    message = {"id": ulid.new(), "text": "let me in"}
    for status, body, response_headers in (
        post("id-locked", message, context, token, headers),
        call(
            http(
                "GET",
                "/rooms/id-locked/messages",
                route=f"GET {ROUTE}",
                params={"room": "id-locked"},
                token=token,
                headers=headers,
            ),
            context,
        ),
    ):
        assert status == 401
        assert body["error"]["code"] == "unauthorized"
        assert body["error"]["message"]
        assert response_headers["WWW-Authenticate"] == "Bearer"
    assert items(aws_endpoint, "us-east-1", tables["us-east-1"]["messages"], "id-locked") == []


def test_a_bodys_author_is_ignored_the_sessions_is_stored(
    in_region: Callable[..., None], context: LambdaContext, token_for: Callable[..., str]
) -> None:
    in_region("eu-west-2")
    status, stored, _ = post(
        "id-author", {"id": ulid.new(), "author": "Eve", "text": "hi"}, context, token_for(ADA)
    )
    assert status == 201
    assert (stored["author"], stored["authorId"]) == (ADA["name"], ADA["userId"])


# --- the cross-region race: no acknowledged message is ever replaced ---------------------------------


def test_two_authors_writing_one_id_in_two_regions_inside_the_replication_window_both_survive(
    in_region: Callable[..., None],
    context: LambdaContext,
    token_for: Callable[..., str],
    aws_endpoint: str,
    tables: dict[str, Any],
) -> None:
    room, message_id = "id-race", ulid.new()
    in_region("us-east-1")
    status, ada, _ = post(room, {"id": message_id, "text": "Ada's words"}, context, token_for(ADA))
    assert status == 201
    in_region("eu-west-2")  # before replication has brought Ada's message here
    status, eve, _ = post(room, {"id": message_id, "text": "Eve's words"}, context, token_for(EVE))
    assert status == 201

    # Replication then writes each region's item into the other, last writer wins, as global
    # tables do: an unconditional put of the whole item under its key.
    written = {region: items(aws_endpoint, region, tables[region]["messages"], room) for region in tables}
    for source, target in (("us-east-1", "eu-west-2"), ("eu-west-2", "us-east-1")):
        client = boto3.client("dynamodb", region_name=target, endpoint_url=aws_endpoint)
        for item in written[source]:
            client.put_item(TableName=tables[target]["messages"], Item=item)

    for region in tables:
        in_region(region)
        _, page = history(room, context, token_for(ADA))
        assert sorted((m["authorId"], m["text"]) for m in page["messages"]) == [
            (ADA["userId"], "Ada's words"),
            (EVE["userId"], "Eve's words"),
        ]
        assert ada in page["messages"]
        assert eve in page["messages"]
        # Ada's retry, in either region, converges on her own message.
        status, again, _ = post(room, {"id": message_id, "text": "Ada's retry"}, context, token_for(ADA))
        assert (status, again) == (200, ada)


# --- limits ------------------------------------------------------------------------------------------


def test_a_flood_from_one_identity_is_rate_limited_stores_nothing_and_others_still_send(
    in_region: Callable[..., None], context: LambdaContext, aws_endpoint: str, tables: dict[str, Any]
) -> None:
    in_region("us-east-1", template_limits=True)  # 5 a second, bursts of 10
    room, flooder = "id-flood", {"userId": "g_FLOOD000000000000000000000", "name": "Flo"}
    started = time.monotonic()
    answers = [
        frame_of(
            ws_send.handler(
                send_frame("c-flood", {"room": room, "id": ulid.new(), "text": f"{n}"}, flooder), context
            )
        )
        for n in range(25)
    ]
    elapsed = time.monotonic() - started
    acked = [a for a in answers if a["type"] == "ack"]
    refused = [a for a in answers if a["type"] == "error"]
    assert 10 <= len(acked) <= 10 + int(elapsed * 5) + 1  # the burst, and the rate while we sent
    assert refused
    assert {a["code"] for a in refused} == {"rate_limited"}
    assert all(0 < a["retryAfterMs"] <= 200 and a["id"] and a["message"] for a in refused)
    stored = items(aws_endpoint, "us-east-1", tables["us-east-1"]["messages"], room)
    assert sorted(i["id"]["S"] for i in stored) == sorted(a["id"] for a in acked)

    eve = frame_of(
        ws_send.handler(send_frame("c-eve", {"room": room, "id": ulid.new(), "text": "hi"}, EVE), context)
    )
    assert eve["type"] == "ack"


def test_an_http_flood_gets_429_with_retry_after(
    in_region: Callable[..., None], context: LambdaContext, token_for: Callable[..., str]
) -> None:
    in_region("eu-west-2", template_limits=True)
    user = {"userId": "g_HTTPFLOOD00000000000000000", "name": "Flo"}  # its own limiter item
    token = token_for(user)
    started = time.monotonic()
    answers: list[tuple[int, dict[str, Any], dict[str, str]]] = []
    while not answers or (answers[-1][0] != 429 and len(answers) < 200):  # until refused
        answers.append(post("id-flood-http", {"id": ulid.new(), "text": "x"}, context, token))
    admitted = sum(status == 201 for status, _, _ in answers)
    assert 10 <= admitted <= 10 + int((time.monotonic() - started) * 5) + 1
    status, body, headers = answers[-1]
    assert status == 429
    assert body["error"]["code"] == "rate_limited"
    assert body["error"]["retryAfterMs"] > 0
    assert headers["Retry-After"] == "1"


def test_the_limiter_admits_a_burst_then_the_sustained_rate(
    aws_endpoint: str, tables: dict[str, Any]
) -> None:
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=aws_endpoint)
    limiter = DynamoRateLimiter(client, tables["us-east-1"]["connections"])
    key, t0 = f"clock-{ulid.new()}", 1_790_000_000_000
    interval, tolerance = 200, 200 * 9  # 5 a second, bursts of 10

    def admit(at: int) -> int | None:
        return limiter.admit(key, now_ms=at, interval_ms=interval, tolerance_ms=tolerance)

    assert [admit(t0) for _ in range(10)] == [None] * 10
    assert admit(t0) == 200
    assert admit(t0 + 150) == 50
    assert admit(t0 + 200) is None
    assert admit(t0 + 200) == 200
    assert [admit(t0 + 60_000) for _ in range(11)] == [None] * 10 + [200]  # the burst is back


def test_one_connection_over_the_cap_is_refused_with_429(
    in_region: Callable[..., None], context: LambdaContext
) -> None:
    in_region("us-east-1", template_limits=True)  # 5 connections per user
    user = {"userId": "g_CAP00000000000000000000000", "name": "Cap"}
    opened = [new_connection_id() for _ in range(5)]
    for connection_id in opened:
        assert (
            ws_connect.handler(ws("$connect", connection_id, query={"room": "id-cap"}, user=user), context)[
                "statusCode"
            ]
            == 200
        )
    refused = ws_connect.handler(
        ws("$connect", new_connection_id(), query={"room": "id-cap"}, user=user), context
    )
    assert refused["statusCode"] == 429
    assert json.loads(refused["body"])["error"]["code"] == "rate_limited"
    other = ws_connect.handler(
        ws("$connect", new_connection_id(), query={"room": "id-cap"}, user=EVE), context
    )
    assert other["statusCode"] == 200
    ws_disconnect.handler(ws("$disconnect", opened[0]), context)
    again = ws_connect.handler(
        ws("$connect", new_connection_id(), query={"room": "id-cap"}, user=user), context
    )
    assert again["statusCode"] == 200


def test_a_websocket_event_without_the_authorizers_context_is_refused(
    in_region: Callable[..., None], context: LambdaContext
) -> None:
    in_region("us-east-1")
    refused = ws_connect.handler(ws("$connect", new_connection_id(), query={"room": "r"}, user=None), context)
    assert refused["statusCode"] == 401
    error = frame_of(
        ws_send.handler(send_frame("c1", {"room": "r", "id": ulid.new(), "text": "t"}, None), context)
    )
    assert error["code"] == "unauthorized"


# --- the $connect authorizer ---------------------------------------------------------------------------


def test_the_authorizer_allows_a_valid_session_and_passes_its_user_on(
    in_region: Callable[..., None], context: LambdaContext, token_for: Callable[..., str]
) -> None:
    in_region("eu-west-2")
    event = authorizer_event(token_for(ADA))
    answer = ws_authorizer.handler(event, context)
    assert answer["principalId"] == ADA["userId"]
    # the room too, validated: the heartbeat's integration reads it as $context.authorizer.room
    assert answer["context"] == {"userId": ADA["userId"], "name": ADA["name"], "room": "lobby"}
    assert answer["policyDocument"]["Statement"] == [
        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": event["methodArn"]}
    ]


@pytest.mark.parametrize("room", [None, "", "Lobby", "a" * 65, 'x", "evil": "1', "room#x", ["lobby"]])
def test_the_authorizer_passes_on_only_a_valid_room_and_leaves_any_other_out(
    in_region: Callable[..., None], context: LambdaContext, token_for: Callable[..., str], room: object
) -> None:
    in_region("us-east-1")
    # given a valid session and a room that is missing or breaks [a-z0-9-]{1,64}
    event = authorizer_event(token_for(ADA))
    event["queryStringParameters"] = {"token": event["queryStringParameters"]["token"]}
    if room is not None:
        event["queryStringParameters"]["room"] = room
    # when the authorizer answers
    answer = ws_authorizer.handler(event, context)
    # then the connection is allowed (its $connect refuses the room with 400) and no room is passed on
    assert answer["context"] == {"userId": ADA["userId"], "name": ADA["name"]}
    assert all(isinstance(value, str) for value in answer["context"].values())


@pytest.mark.parametrize("kind", ["missing", "empty", "junk", "tampered", "expired"])
def test_the_authorizer_answers_unauthorized_so_api_gateway_refuses_with_401(
    in_region: Callable[..., None], context: LambdaContext, token_for: Callable[..., str], kind: str
) -> None:
    in_region("us-east-1")
    token = {
        "missing": None,
        "empty": "",
        "junk": "junk",
        "tampered": tampered(token_for()),
        "expired": token_for(ttl=-120),
    }[kind]
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        ws_authorizer.handler(authorizer_event(token), context)


def test_a_history_page_never_splits_the_messages_of_one_id(
    in_region: Callable[..., None], context: LambdaContext, token_for: Callable[..., str]
) -> None:
    in_region("us-east-1")
    room = "id-paging"
    first, shared, last = sorted(ulid.new() for _ in range(3))
    authors = [{"userId": f"g_PAGE{n:022d}", "name": f"P{n}"} for n in range(4)]
    post(room, {"id": first, "text": "first"}, context, token_for(authors[0]))
    for author in authors:  # four authors, one id (only possible now that the writer is in the key)
        assert post(room, {"id": shared, "text": author["name"]}, context, token_for(author))[0] == 201
    post(room, {"id": last, "text": "last"}, context, token_for(authors[0]))

    seen: list[tuple[str, str]] = []
    pages, after = 0, ""
    while pages < 10:  # bounded: 6 messages
        _, page = history(room, context, token_for(ADA), f"limit=2{after}")
        pages += 1
        ids = [m["id"] for m in page["messages"]]
        seen += [(m["id"], m["authorId"]) for m in page["messages"]]
        if shared in ids:
            assert ids.count(shared) == 4  # all of that id's messages on one page
        if page["next"] is None:
            break
        after = f"&after={page['next']}"
    assert sorted(seen) == sorted(
        [
            (first, authors[0]["userId"]),
            *((shared, a["userId"]) for a in authors),
            (last, authors[0]["userId"]),
        ]
    )
    assert len(seen) == len(set(seen))  # none twice

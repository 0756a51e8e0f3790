"""Names through the real handlers against moto (docs/api.md, "Names"): the session and every
stored message name the author's tag and kind, also for messages stored before they existed, and a
guest cannot speak as a look-alike of an account that just spoke."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3

from chat import ulid
from chat.handlers import ws_send
from chat.model import user_tag
from localcloud.lambda_.context import LambdaContext
from tests.integration.helpers import frame_of, send_frame
from tests.integration.test_identity import history, new_session, post


def test_a_guest_session_names_its_tag_and_kind_and_its_messages_carry_them(
    in_region: Callable[..., None], context: LambdaContext
) -> None:
    # given two guests who both sign in as "Ada"
    in_region("us-east-1")
    _, first, _ = new_session(context, {"name": "Ada"})
    _, second, _ = new_session(context, {"name": "Ada"})

    # then each session names its user's tag and kind, and the tags differ
    for session in (first, second):
        assert session["user"]["tag"] == user_tag(session["user"]["id"])
        assert session["user"]["kind"] == "guest"
    assert first["user"]["tag"] != second["user"]["tag"]

    # when both post, then the stored messages and the history carry the same tag and kind
    for session in (first, second):
        status, stored, _ = post(
            "names-two-adas", {"id": ulid.new(), "text": "hi"}, context, session["token"]
        )
        assert status == 201
        assert (stored["author"], stored["authorTag"], stored["authorKind"]) == (
            "Ada",
            session["user"]["tag"],
            "guest",
        )
    _, page = history("names-two-adas", context, first["token"])
    assert {(m["authorId"], m["authorTag"], m["authorKind"]) for m in page["messages"]} == {
        (s["user"]["id"], s["user"]["tag"], "guest") for s in (first, second)
    }


def test_a_message_stored_before_tags_existed_is_read_with_its_authors_tag_and_kind(
    in_region: Callable[..., None], context: LambdaContext, aws_endpoint: str, tables: dict[str, Any]
) -> None:
    # given an item written without authorTag or authorKind, as every message was before them
    in_region("us-east-1")
    _, reader, _ = new_session(context, {"name": "Bo"})
    message_id, author_id, room = ulid.new(), "o_" + "a" * 32, "names-old-item"
    boto3.client("dynamodb", region_name="us-east-1", endpoint_url=aws_endpoint).put_item(
        TableName=tables["us-east-1"]["messages"],
        Item={
            "pk": {"S": f"room#{room}"},
            "sk": {"S": f"{message_id}#{author_id}"},
            "id": {"S": message_id},
            "room": {"S": room},
            "author": {"S": "Ada"},
            "authorId": {"S": author_id},
            "text": {"S": "from before tags"},
            "sentAt": {"S": "2026-11-25T00:00:00.000Z"},
            "acceptedRegion": {"S": "us-east-1"},
            "transport": {"S": "http"},
            "expiresAt": {"N": "1"},
        },
    )

    # when the room's history is read, then the message names its author's tag and kind
    _, page = history(room, context, reader["token"])
    (message,) = page["messages"]
    assert (message["authorTag"], message["authorKind"]) == (user_tag(author_id), "account")


def test_a_huge_name_is_refused(in_region: Callable[..., None], context: LambdaContext) -> None:
    in_region("us-east-1")
    status, body, _ = new_session(context, {"name": "A" * (128 * 1024 - 16)})
    assert (status, body["error"]["code"]) == (400, "invalid_name")


def test_a_guest_cannot_speak_as_a_look_alike_of_an_account_that_just_spoke_on_either_api(
    in_region: Callable[..., None], context: LambdaContext, token_for: Callable[..., str]
) -> None:
    # given the account Ada, which just spoke in a room
    in_region("us-east-1")
    room = f"names-account-{ulid.new().lower()}"
    account = {"userId": "o_" + "b" * 32, "name": "Ada"}
    status, said, _ = post(room, {"id": ulid.new(), "text": "it is me"}, context, token_for(account))
    assert (status, said["authorKind"]) == (201, "account")

    # when a guest called "Аda" (Cyrillic А) speaks over HTTP, and another called "Ada" over the
    # WebSocket
    fake = {"userId": "g_" + "F" * 26, "name": "\u0410da"}
    status, refused, _ = post(room, {"id": ulid.new(), "text": "me too"}, context, token_for(fake))
    frame_id = ulid.new()
    guest = {"userId": "g_" + "G" * 26, "name": "Ada"}
    frame = frame_of(
        ws_send.handler(
            send_frame("c-names", {"room": room, "id": frame_id, "text": "me too"}, guest), context
        )
    )

    # then both are refused with name_taken, naming the account's tag, and nothing is stored
    assert (status, refused["error"]["code"]) == (409, "name_taken")
    assert user_tag(account["userId"]) in refused["error"]["message"]
    assert (frame["type"], frame["id"], frame["code"]) == ("error", frame_id, "name_taken")
    _, page = history(room, context, token_for(account))
    assert [m["authorId"] for m in page["messages"]] == [account["userId"]]

"""The edge's one error table (chat/error_responses.py) and the WebSocket frame routes that use it:
every transport answers an error the same way, and nothing escapes a frame route."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chat.error_responses import error_answer
from chat.errors import ChatError, Forbidden, InvalidInput, RateLimited, StoreError, TooLarge, Unauthorized
from chat.frames import frame_route


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidInput("invalid_room", "bad room"), 400),
        (TooLarge("too_large", "too big"), 413),
        (Forbidden("guest_sign_in_disabled", "no guests"), 403),
        (ChatError("name_taken", "taken"), 400),
    ],
)
def test_a_chat_error_answers_its_own_status_and_code_with_no_headers(error: ChatError, status: int) -> None:
    answer = error_answer(error)
    assert (answer.status, answer.error, answer.headers) == (status, error.to_json(), {})


def test_an_unauthorized_request_is_told_how_to_authenticate() -> None:
    answer = error_answer(Unauthorized())
    assert answer.status == 401
    assert answer.error["code"] == "unauthorized"
    assert answer.headers == {"WWW-Authenticate": "Bearer"}


def test_a_rate_limited_request_hears_when_to_retry_in_ms_and_whole_seconds_rounded_up() -> None:
    answer = error_answer(RateLimited("slow down", retry_after_ms=1001))
    assert (answer.status, answer.error["retryAfterMs"], answer.headers) == (429, 1001, {"Retry-After": "2"})


def test_a_connection_over_the_cap_is_rate_limited_with_no_time_to_wait() -> None:
    answer = error_answer(RateLimited("close one first", retry_after_ms=None))
    assert answer.status == 429
    assert "retryAfterMs" not in answer.error
    assert answer.headers == {}


def test_a_store_failure_is_unavailable_and_names_no_aws_detail() -> None:
    answer = error_answer(StoreError("PutItem", "ProvisionedThroughputExceededException"))
    assert (answer.status, answer.error["code"]) == (503, "unavailable")
    assert "PutItem" not in answer.error["message"]
    assert "Provisioned" not in answer.error["message"]


def test_a_defect_is_an_internal_error_that_never_shows_the_exception() -> None:
    answer = error_answer(KeyError("the secret detail"))
    assert (answer.status, answer.error["code"]) == (500, "internal_error")
    assert "secret detail" not in json.dumps(answer.error)


def _frame(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer["statusCode"] == 200  # a frame route never refuses: API Gateway would send a bare error
    frame: dict[str, Any] = json.loads(answer["body"])
    return frame


@pytest.mark.parametrize(
    ("raised", "code"),
    [
        (StoreError("PutItem", "ResourceNotFoundException"), "unavailable"),
        (RuntimeError("a defect"), "internal_error"),
        (RateLimited("slow down", retry_after_ms=200), "rate_limited"),
    ],
)
def test_given_a_frame_with_an_id_when_its_handling_fails_then_the_error_frame_names_that_id(
    raised: Exception, code: str
) -> None:
    def handle(body: Any, event: dict[str, Any]) -> dict[str, Any]:
        raise raised

    frame = _frame(frame_route(handle)({"body": '{"id": "01J0000000000000000000000A"}'}, None))
    assert frame == {"type": "error", "id": "01J0000000000000000000000A", **error_answer(raised).error}
    assert frame["code"] == code


@pytest.mark.parametrize("body", ["{not json", '[{"id": "x"}]', '{"id": 7}'])
def test_given_a_frame_whose_id_cannot_be_read_when_it_fails_then_the_error_frame_has_a_null_id(
    body: str,
) -> None:
    def handle(body: Any, event: dict[str, Any]) -> dict[str, Any]:
        raise InvalidInput("invalid_message", "the message must be a JSON object")

    frame = _frame(frame_route(handle)({"body": body}, None))
    assert frame["type"] == "error"
    assert frame["id"] is None

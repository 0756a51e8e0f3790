"""The message rules of BRIEF section 4, checked on the plain validation functions."""

from __future__ import annotations

import string
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat import ulid
from chat.errors import InvalidInput
from chat.validation import parse_new_message, parse_page

NOW = 1_790_000_000_000
SKEW = 300_000


def payload(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {"id": ulid.new(NOW), "room": "lobby", "author": "ada", "text": "hi"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not ...}


def error_code(body: object, **kwargs: object) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse_new_message(body, now_ms=NOW, max_skew_ms=SKEW, **kwargs)  # type: ignore[arg-type]
    return caught.value.code


def test_a_valid_message_is_trimmed_and_kept() -> None:
    message = parse_new_message(payload(text="  hello  "), now_ms=NOW, max_skew_ms=SKEW)
    assert (message.text, message.room) == ("hello", "lobby")


@pytest.mark.parametrize("author", [..., None, "", "x" * 500, ["ada"], "\u202enimda"])
def test_a_bodys_author_is_ignored_whatever_it_holds(author: object) -> None:
    message = parse_new_message(payload(author=author), now_ms=NOW, max_skew_ms=SKEW)
    assert not hasattr(message, "author")


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"id": ...}, "missing_field"),
        ({"text": ...}, "missing_field"),
        ({"room": ...}, "missing_field"),
        ({"text": None}, "missing_field"),
        ({"text": 42}, "invalid_text"),
        ({"text": "   \n "}, "invalid_text"),
        ({"text": "x" * 4001}, "text_too_long"),
        ({"text": "bad \ud800 surrogate"}, "invalid_text"),
        ({"text": "bell \x07"}, "invalid_text"),
        ({"room": "Lobby"}, "invalid_room"),
        ({"room": "a" * 65}, "invalid_room"),
        ({"room": "lob by"}, "invalid_room"),
        ({"id": "not-a-ulid"}, "invalid_id"),
        ({"id": "8" + "0" * 25}, "invalid_id"),
        ({"id": ulid.new(NOW).lower()}, "invalid_id"),
        ({"id": ulid.new(NOW - SKEW - 1000)}, "id_out_of_range"),
        ({"id": ulid.new(NOW + SKEW + 1000)}, "id_out_of_range"),
    ],
)
def test_bad_input_gets_a_clear_error_code(overrides: dict[str, object], code: str) -> None:
    assert error_code(payload(**overrides)) == code


def test_text_of_exactly_the_limit_is_accepted_after_trimming() -> None:
    text = " " + "é" * 4000 + " "
    assert len(parse_new_message(payload(text=text), now_ms=NOW, max_skew_ms=SKEW).text) == 4000


def test_the_url_room_wins_over_a_body_without_room() -> None:
    message = parse_new_message(payload(room=...), room="general", now_ms=NOW, max_skew_ms=SKEW)
    assert message.room == "general"


@pytest.mark.parametrize("body", [None, [], "text", 3, True])
def test_a_message_that_is_not_an_object_is_refused(body: object) -> None:
    assert error_code(body) == "invalid_message"


@given(st.text(max_size=80))
def test_any_room_name_is_either_valid_or_refused_with_invalid_room(room: str) -> None:
    valid = 1 <= len(room) <= 64 and all(c in string.ascii_lowercase + string.digits + "-" for c in room)
    if valid:
        assert parse_new_message(payload(room=room), now_ms=NOW, max_skew_ms=SKEW).room == room
    else:
        assert error_code(payload(room=room)) == "invalid_room"


@given(st.text(max_size=4100))
def test_any_text_is_either_stored_trimmed_or_refused_with_a_text_code(text: str) -> None:
    stripped = text.strip()
    acceptable = 0 < len(stripped) <= 4000 and not any(
        unicodedata.category(c) in {"Cc", "Cs"} and c not in "\n\t" for c in stripped
    )
    if acceptable:
        assert parse_new_message(payload(text=text), now_ms=NOW, max_skew_ms=SKEW).text == stripped
    else:
        assert error_code(payload(text=text)) in {"invalid_text", "text_too_long"}


@given(st.integers(min_value=0, max_value=(1 << 48) - 1))
def test_a_ulid_carries_its_millisecond_time(ms: int) -> None:
    made = ulid.new(ms)
    assert ulid.is_ulid(made)
    assert ulid.timestamp_ms(made) == ms
    assert ulid.lowest(ms) <= made


@pytest.mark.parametrize(
    ("after", "limit", "code"),
    [
        ("nope", None, "invalid_after"),
        (None, "0", "invalid_limit"),
        (None, "101", "invalid_limit"),
        (None, "-1", "invalid_limit"),
        (None, "ten", "invalid_limit"),
    ],
)
def test_bad_history_paging_is_refused(after: str | None, limit: str | None, code: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_page(after, limit)
    assert caught.value.code == code


def test_history_paging_defaults_to_fifty() -> None:
    assert parse_page(None, None) == (None, 50)

"""Display names (docs/api.md): NFKC-normalised then trimmed, 1-40 characters, refused when they
hold a control, format (bidi overrides, zero-width characters), private-use, unassigned, surrogate
or line/paragraph-separator character, or when no character is visible."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from chat.model import InvalidInput, validate_name

REFUSED = {"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"}
BLANK = {"\u3164", "\u115f", "\u1160", "\uffa0", "\u2800"}


def refusal(name: object) -> str:
    with pytest.raises(InvalidInput) as caught:
        validate_name(name)
    return caught.value.code


@pytest.mark.parametrize(
    "name",
    [
        "\u202enimda",  # right-to-left override: shows as "admin"
        "ada\u200b",  # zero-width space
        "\u200b\u200b",  # only zero-width spaces
        "\u3164",  # Hangul filler: a letter that renders as nothing
        "\uffa0",  # half-width Hangul filler
        "\u2800\u2800",  # blank Braille patterns
        "\u115f\u1160",  # Hangul choseong/jungseong fillers
        " \u0301\u0301 ",  # only combining marks
        "ada\u2066x\u2069",  # bidi isolates
        "a\u200db",  # zero-width joiner
        "\ue000boss",  # private use
        "ada\u2028",  # line separator
        "bell\x07",
        "tab\tname",
        "",
        "   ",
        "x" * 41,
        "\ud800",  # lone surrogate
        42,
        None,
        ["ada"],
    ],
)
def test_names_that_hide_or_fake_something_are_refused(name: object) -> None:
    assert refusal(name) == "invalid_name"


@pytest.mark.parametrize(
    ("name", "stored"),
    [
        ("  Ada Lovelace ", "Ada Lovelace"),
        ("Ｆｕｌｌｗｉｄｔｈ", "Fullwidth"),  # NFKC folds compatibility forms
        ("ﬁne", "fine"),
        ("José", "José"),
        ("李小龍", "李小龍"),
        ("x" * 40, "x" * 40),
        ("e\u0301", "é"),  # a combining mark on a visible letter composes
    ],
)
def test_ordinary_names_are_normalised_and_kept(name: str, stored: str) -> None:
    assert validate_name(name) == stored


@given(st.text(max_size=60))
@example("\u202enimda")
@example("\u3164")
@example("a\u0301")
def test_any_name_is_kept_normalised_exactly_when_the_rule_allows_it(name: str) -> None:
    normal = unicodedata.normalize("NFKC", name)
    trimmed = normal.strip()
    allowed = (
        not any(unicodedata.category(c) in REFUSED for c in normal)
        and 1 <= len(trimmed) <= 40
        and any(not c.isspace() and unicodedata.category(c)[0] != "M" and c not in BLANK for c in trimmed)
    )
    if allowed:
        assert validate_name(name) == trimmed
    else:
        assert refusal(name) == "invalid_name"

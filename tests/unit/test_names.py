"""Display names (docs/api.md, "Names"): at most 160 code points as sent, NFKC-normalised then
trimmed (of spaces and blank letters), 1-40 characters, refused when they hold a control, format
(bidi overrides, zero-width characters), private-use, unassigned, surrogate or line/paragraph-
separator character, or when no character is visible. Names that look alike share a skeleton;
a user's tag and kind come from the user id."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from chat import names, ulid
from chat.errors import InvalidInput
from chat.model import Author, Message, user_kind, user_tag
from chat.names import (
    CLEAR_FOR_MS,
    LOOK_ALIKE_WINDOW_MS,
    MAX_RAW_NAME_CHARS,
    NameTaken,
    skeleton,
    validate_name,
)
from chat.service import accept_message
from chat.settings import Settings
from tests.unit.fakes import FakeMessageStore, FakeRateLimiter

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
        ("Ada\u2800\u2800", "Ada"),  # blank Braille padding is trimmed like spaces
        ("\u3164Ada\u3164", "Ada"),  # so are Hangul fillers
        ("𝐀da", "Ada"),  # mathematical bold capital A: NFKC folds it
        ("e\u0301" * 40, "é" * 40),  # 80 code points as sent, 40 characters once composed
    ],
)
def test_ordinary_names_are_normalised_and_kept(name: str, stored: str) -> None:
    assert validate_name(name) == stored


def blank(char: str) -> bool:
    return char.isspace() or char in BLANK


@given(st.text(max_size=60) | st.text(min_size=150, max_size=170))
@example("\u202enimda")
@example("\u3164")
@example("a\u0301")
@example("Ada\u2800\u2800")
@example(" " * 120 + "Ada" + " " * 37)  # 160 as sent: allowed
@example(" " * 120 + "Ada" + " " * 38)  # 161 as sent: refused, whatever trimming would leave
def test_any_name_is_kept_normalised_exactly_when_the_rule_allows_it(name: str) -> None:
    normal = unicodedata.normalize("NFKC", name)
    start, end = 0, len(normal)
    while start < end and blank(normal[start]):
        start += 1
    while end > start and blank(normal[end - 1]):
        end -= 1
    trimmed = normal[start:end]
    allowed = (
        len(name) <= 160
        and not any(unicodedata.category(c) in REFUSED for c in normal)
        and 1 <= len(trimmed) <= 40
        and any(not blank(c) and unicodedata.category(c)[0] != "M" for c in trimmed)
    )
    if allowed:
        assert validate_name(name) == trimmed
    else:
        assert refusal(name) == "invalid_name"


def test_a_huge_name_is_refused_by_its_length_as_sent_before_normalisation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a 128 KB name of a character NFKC expands eighteenfold (U+FDFA)
    name = "\ufdfa" * (128 * 1024 // 3)
    normalised: list[str] = []
    real = unicodedata.normalize

    def watching(form: str, text: str) -> str:
        normalised.append(text)
        return real(form, text)  # type: ignore[arg-type]

    monkeypatch.setattr("chat.names.unicodedata.normalize", watching)
    # when it is validated, then it is refused without being normalised
    assert refusal(name) == "invalid_name"
    assert normalised == []
    assert refusal("a" * (MAX_RAW_NAME_CHARS + 1)) == "invalid_name"


@pytest.mark.parametrize(
    "look_alike",
    [
        "\u0410da",  # Cyrillic capital A
        "\u0391da",  # Greek capital alpha
        "A\u0501a",  # Cyrillic komi de for d
        "Ad\u0430",  # Cyrillic small a
        "\U0001d400da",  # mathematical bold capital A (NFKC folds it first)
        "Ada\u2800\u2800",  # blank Braille padding
        " Ada ",
    ],
)
def test_names_that_look_like_ada_have_adas_skeleton(look_alike: str) -> None:
    # given a name that looks like "Ada", when it is validated, then its skeleton is Ada's
    assert skeleton(validate_name(look_alike)) == skeleton("Ada")


@pytest.mark.parametrize("other", ["Ana", "ada", "Adam", "A da", "Adá", "Bo"])
def test_names_that_look_different_have_different_skeletons(other: str) -> None:
    assert skeleton(validate_name(other)) != skeleton("Ada")


@given(st.text(min_size=1, max_size=40))
def test_a_skeleton_is_its_own_skeleton(name: str) -> None:
    # the representative of a class of look-alikes is in no other class
    assert skeleton(skeleton(name)) == skeleton(name)


def test_a_tag_is_four_unambiguous_characters_the_same_for_one_user() -> None:
    tags = {user_tag(f"g_{n:026d}") for n in range(2000)}
    assert all(len(tag) == 4 and set(tag) <= set("0123456789abcdefghjkmnpqrstvwxyz") for tag in tags)
    assert len(tags) > 1900  # 20 bits: 2,000 users share very few tags
    assert user_tag("g_" + "A" * 26) == user_tag("g_" + "A" * 26)


@given(st.text(min_size=1, max_size=40))
def test_only_o_ids_are_accounts(user_id: str) -> None:
    assert user_kind(user_id) == ("account" if user_id.startswith("o_") else "guest")


# --- a guest cannot speak as a look-alike of an account that spoke in the room -------------------

NOW_MS = 1_790_000_000_000
SETTINGS = Settings(region="us-east-1", messages_table="m", connections_table="c")
ACCOUNT_ADA = Author("o_ada", "Ada")


@pytest.fixture(autouse=True)
def fresh_container() -> None:
    """Each test starts in a new container: no room is known clear yet."""
    names._clear_until.clear()


def say(store: FakeMessageStore, author: Author, *, at_ms: int = NOW_MS, room: str = "r") -> Message:
    message, _ = accept_message(
        {"id": ulid.new(at_ms), "room": room, "text": "hello"},
        author=author,
        transport="websocket",
        store=store,
        limiter=FakeRateLimiter(),
        settings=SETTINGS,
        now_ms=at_ms,
    )
    return message


@pytest.mark.parametrize("look_alike", ["Ada", "\u0410da", "\u0391da", "A\u0501a", "Ada\u2800"])
def test_a_guest_cannot_speak_under_a_name_that_looks_like_a_recent_accounts(look_alike: str) -> None:
    # given the account Ada, which spoke in the room a minute ago
    store = FakeMessageStore()
    say(store, ACCOUNT_ADA, at_ms=NOW_MS - 60_000)
    # when a guest whose name looks the same speaks, then nothing is stored
    with pytest.raises(NameTaken) as refused:
        say(store, Author("g_FAKE", validate_name(look_alike)))
    assert (refused.value.code, refused.value.status) == ("name_taken", 409)
    assert user_tag(ACCOUNT_ADA.user_id) in refused.value.message
    assert len(store.items) == 1


def test_guests_of_one_name_and_accounts_keep_speaking_and_other_names_are_free() -> None:
    # given a guest Ada who spoke in the room
    store = FakeMessageStore()
    say(store, Author("g_ADA", "Ada"), at_ms=NOW_MS - 60_000)
    # then another guest Ada (or the same person signed in again), an account called Ada (after
    # which the guests are refused), a guest called Adam and a guest Ada in another room all speak
    say(store, Author("g_AGAIN", "Ada"))
    say(store, Author("o_ada", "\u0410da"), at_ms=NOW_MS + 1)
    say(store, Author("o_ada2", "Ada"), at_ms=NOW_MS + 2)  # accounts are never refused
    say(store, Author("g_ADAM", "Adam"), at_ms=NOW_MS + 3)
    say(store, Author("g_OTHER", "Ada"), room="elsewhere")
    assert len(store.items) == 6
    with pytest.raises(NameTaken):
        say(store, Author("g_ADA", "Ada"), at_ms=NOW_MS + CLEAR_FOR_MS)


def test_a_room_found_clear_is_read_again_after_five_seconds_not_on_every_message() -> None:
    # given a guest Ada speaking in a room with no account of her look
    store = FakeMessageStore()
    reads = 0
    list_messages = store.list_messages

    def counted(room: str, *, after: str | None, limit: int) -> tuple[list[Message], str | None]:
        nonlocal reads
        reads += 1
        return list_messages(room, after=after, limit=limit)

    store.list_messages = counted  # type: ignore[method-assign]
    for n in range(10):
        say(store, Author("g_ADA", "Ada"), at_ms=NOW_MS + n * 400)
    # then the room was read once for her ten messages in 4 s
    assert reads == 1
    # when the account Ada speaks, then her next message within 5 s of the read still passes, and
    # the one after that is refused
    say(store, ACCOUNT_ADA, at_ms=NOW_MS + 4000)
    say(store, Author("g_ADA", "Ada"), at_ms=NOW_MS + CLEAR_FOR_MS - 1)
    with pytest.raises(NameTaken):
        say(store, Author("g_ADA", "Ada"), at_ms=NOW_MS + CLEAR_FOR_MS)


def test_a_look_alike_is_free_once_the_account_has_not_spoken_for_ten_minutes() -> None:
    store = FakeMessageStore()
    say(store, ACCOUNT_ADA, at_ms=NOW_MS - LOOK_ALIKE_WINDOW_MS - 1)
    message = say(store, Author("g_NEW", "Ada"))
    assert (message.to_json()["authorKind"], message.to_json()["authorTag"]) == ("guest", user_tag("g_NEW"))

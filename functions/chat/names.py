"""Display names and what tells two people of one name apart (docs/api.md, "Names").

- A name's raw length is capped before anything else touches it: NFKC of 128 KB costs far more
  than a length check, and no 40-character name needs more than 160 code points to write.
- A user's tag and kind (chat.model.user_tag, user_kind) travel with every message, so
  "Ada #k3f9 guest" and "Ada #7hq2" differ wherever either is shown.
- A name's skeleton (after Unicode's confusables, UTS #39) is the same for names that look the
  same ("Ada" with a Cyrillic capital A, U+0410, and with a Latin one). A guest cannot speak in a
  room under a name that looks like that of an account which spoke there in the last minutes: the
  account a reader could take the guest for.
"""

from __future__ import annotations

import functools
import unicodedata
from pathlib import Path

from chat import ulid
from chat.errors import ChatError, InvalidInput
from chat.model import Author, user_kind, user_tag
from chat.ports import MessageStore

MAX_NAME_CHARS = 40
# Checked before NFKC (code points, as str's len counts them): four times the stored limit leaves
# room for decomposed accents (e + U+0301 is two code points that compose into one).
MAX_RAW_NAME_CHARS = 160
# Categories no display name may hold: controls, format characters (bidi overrides and isolates,
# zero-width spaces and joiners...), private use, unassigned, surrogates, line and paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cn", "Cs", "Zl", "Zp"})
# Letters that render as nothing (Hangul fillers, the blank Braille pattern): trimmed from both
# ends like spaces, and a name of only these, spaces and combining marks would look empty.
BLANK_LETTERS = frozenset("\u3164\u115f\u1160\uffa0\u2800")
_CONFUSABLES = Path(__file__).with_name("confusables.tsv")
# The room's recent speakers a guest's name is compared with: the messages of the last 10 minutes,
# at most the first 100 of them (one query, about 4 KB a guest's message in a quiet room).
LOOK_ALIKE_WINDOW_MS = 10 * 60 * 1000
LOOK_ALIKE_SCAN = 100
# A room and look found clear stay clear for this long in a container: a chatty guest costs one
# Query every 5 s, not one per message, and an account's name is guarded at most 5 s late.
CLEAR_FOR_MS = 5000
_MAX_CLEAR = 10_000
_clear_until: dict[tuple[str, str], int] = {}  # (room, skeleton) -> ms


class NameTaken(ChatError):
    """A guest's name looks like that of an account that spoke in the room: nothing stored."""

    status = 409

    def __init__(self, name: str, tag: str) -> None:
        super().__init__(
            "name_taken",
            f"an account in this room (#{tag}) is called '{name}' or a name that looks the same:"
            " sign in again with another name",
        )


def _blank(char: str) -> bool:
    return char.isspace() or char in BLANK_LETTERS


def _visible(char: str) -> bool:
    return not (_blank(char) or unicodedata.category(char)[0] == "M")


def trim(name: str) -> str:
    """`name` without spaces or blank letters at either end."""
    start, end = 0, len(name)
    while start < end and _blank(name[start]):
        start += 1
    while end > start and _blank(name[end - 1]):
        end -= 1
    return name[start:end]


def validate_name(name: object) -> str:
    """A display name: at most 160 code points as sent, then NFKC-normalised and trimmed (of
    spaces and blank letters), 1-40 characters, refused when it holds any character of a refused
    category (bidi overrides, zero-width characters, controls, private use...) or when none of
    its characters is visible."""
    if not isinstance(name, str):
        raise InvalidInput("invalid_name", "'name' must be a string")
    if len(name) > MAX_RAW_NAME_CHARS:
        raise InvalidInput("invalid_name", f"a name must be 1-{MAX_NAME_CHARS} characters")
    normal = unicodedata.normalize("NFKC", name)
    for char in normal:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise InvalidInput(
                "invalid_name",
                f"a name cannot hold U+{ord(char):04X} (a control, format or invisible character)",
            )
    normal = trim(normal)
    if not 1 <= len(normal) <= MAX_NAME_CHARS:
        raise InvalidInput("invalid_name", f"a name must be 1-{MAX_NAME_CHARS} characters")
    if not any(_visible(char) for char in normal):
        raise InvalidInput("invalid_name", "a name needs at least one visible character")
    return normal


@functools.cache
def _confusables() -> dict[int, str]:
    """Read once per container, on the first skeleton (not at import: most handlers need none)."""
    table = {}
    for line in _CONFUSABLES.read_text(encoding="ascii").splitlines():
        if line and not line.startswith("#"):
            source, target = line.split("\t")
            table[int(source, 16)] = chr(int(target, 16))
    return table


def skeleton(name: str) -> str:
    """What `name` looks like: UTS #39's skeleton (NFD, each confusable character replaced by its
    class's representative, NFD again), with spaces and blank letters at the ends trimmed.
    Names with one skeleton look alike: "Ada" written with a Latin, Cyrillic or Greek capital A."""
    mapped = unicodedata.normalize("NFD", name).translate(_confusables())
    return trim(unicodedata.normalize("NFD", mapped))


def check_look_alikes(author: Author, room: str, *, store: MessageStore, now_ms: int) -> None:
    """Refuse a guest's message (NameTaken) while the room's messages of the last 10 minutes
    hold one from an account whose name has the guest's skeleton.

    Only an account's name is protected: its tag is the same wherever and whenever it signs in,
    while a guest who signs in again is a new user with a new tag, so guarding a guest's name
    would only lock the same person out of it. Two guests of one look stay apart by their tags.
    Accounts are never refused: a guest cannot squat an account's name."""
    if user_kind(author.user_id) == "account":
        return
    looks = skeleton(author.name)
    if _clear_until.get((room, looks), 0) > now_ms:
        return
    recent, _ = store.list_messages(
        room, after=ulid.lowest(now_ms - LOOK_ALIKE_WINDOW_MS), limit=LOOK_ALIKE_SCAN
    )
    for message in recent:
        if user_kind(message.authorId) == "account" and skeleton(message.author) == looks:
            raise NameTaken(message.author, user_tag(message.authorId))
    if len(_clear_until) >= _MAX_CLEAR:
        _clear_until.clear()
    _clear_until[room, looks] = now_ms + CLEAR_FOR_MS

"""Two people of one name look different on the page (docs/api.md, "Names"): every message shows
its author's name, the tag of the author's user id and whether the author is a guest."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser.conftest import OpenPage
from tests.browser.pages import NEAR_LONDON, NEAR_NEW_YORK

pytestmark = pytest.mark.browser


def test_two_guests_both_called_ada_look_different_and_both_are_marked_guests(
    open_page: OpenPage, screenshots: Path
) -> None:
    # given two people who both join one room as "Ada", one of them as "Аda" with a Cyrillic А
    first = open_page("Ada", NEAR_NEW_YORK)
    second = open_page("\u0410da", "london")
    first.wait_connected(NEAR_NEW_YORK)
    second.wait_connected(NEAR_LONDON)

    # when each writes a message
    first.send("I am the first Ada")
    second.send("I am the other Ada")

    # then each page shows both messages, each with the tag its author's own page shows, the two
    # tags differ, and both authors are marked as guests
    texts = ["I am the first Ada", "I am the other Ada"]
    tags = {first.shown_as[1], second.shown_as[1]}
    assert len(tags) == 2
    assert all(tag.startswith("#") and len(tag) == 5 for tag in tags)
    for chat in (first, second):
        chat.wait_delivered(texts)
        shown = chat.by_text()
        assert shown["I am the first Ada"]["tag"] == first.shown_as[1]
        assert shown["I am the other Ada"]["tag"] == second.shown_as[1]
        assert {shown[text]["kind"] for text in texts} == {"guest"}
        assert {shown[text]["author"] for text in texts} == {"Ada", "\u0410da"}
    first.page.screenshot(path=screenshots / "two-adas.png")


def test_my_own_messages_show_me_as_the_page_says_i_am_signed_in(open_page: OpenPage) -> None:
    # given a guest in a room, shown as her name, her tag and "guest" at the top of the page
    ada = open_page("Ada", NEAR_NEW_YORK)
    ada.wait_connected(NEAR_NEW_YORK)
    name, tag, kind = ada.shown_as
    assert (name, kind) == ("Ada", "guest")
    assert len(tag) == 5

    # when she writes, then her message shows the same name, tag and kind
    ada.send("tagged from the start")
    ada.wait_delivered(["tagged from the start"])
    row = ada.by_text()["tagged from the start"]
    assert (row["author"], row["tag"], row["kind"]) == (name, tag, kind)

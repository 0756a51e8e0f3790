"""Editing and deleting one's own message on the chat page, with the keyboard, seen from another
region; and an edit and a delete made while the page's region dies, carried by the outbox through
the failover."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import OpenPage
from tests.browser.pages import NEAR_LONDON, NEAR_NEW_YORK, ChatPage, StackControl

# What a message row shows of its changes, read from the DOM.
READ_ROW = """(id) => {
  const li = document.querySelector(`#messages li.message[data-id="${id}"]`);
  if (!li) return null;
  const actions = li.querySelector('.actions');
  return {
    text: li.querySelector('.text').textContent,
    marker: li.querySelector('.edited').textContent,
    deleted: li.dataset.deleted === 'true',
    version: li.dataset.version,
    note: li.querySelector('.change').textContent,
    actions: !actions.hidden,
  };
}"""

SHOWS = """([id, text, marker]) => {
  const li = document.querySelector(`#messages li.message[data-id="${id}"]`);
  return !!li && li.querySelector('.text').textContent === text
    && li.querySelector('.edited').textContent === marker;
}"""
DELETED_NOTE = "This message was deleted."


def message_id(chat: ChatPage, text: str) -> str:
    chat.wait_delivered([text])
    return chat.by_text()[text]["id"]


def row(chat: ChatPage, id: str) -> dict[str, Any]:
    shown: dict[str, Any] = chat.page.evaluate(READ_ROW, id)
    return shown


def wait_shows(chat: ChatPage, id: str, text: str, marker: str) -> None:
    chat.page.wait_for_function(SHOWS, arg=[id, text, marker])


def edit_with_keyboard(chat: ChatPage, id: str, text: str) -> None:
    """Tab to the message's Edit button, Enter, type, Enter: no mouse."""
    item = chat.page.locator(f'#messages li.message[data-id="{id}"]')
    item.get_by_role("button", name="Edit this message").focus()
    chat.page.keyboard.press("Enter")
    box = item.get_by_role("textbox", name="Edited message")
    assert box.evaluate("(node) => node === document.activeElement")  # the editor takes the focus
    box.fill(text)
    box.press("Enter")


def delete_with_keyboard(chat: ChatPage, id: str) -> None:
    item = chat.page.locator(f'#messages li.message[data-id="{id}"]')
    item.get_by_role("button", name="Delete this message").focus()
    chat.page.keyboard.press("Enter")


def test_an_author_edits_then_deletes_a_message_with_the_keyboard_and_another_region_sees_each_change(
    open_page: OpenPage,
) -> None:
    # Given Ada near us-east-1 and Bo in London, and a message of Ada's with a typo
    ada = open_page("Ada", NEAR_NEW_YORK)
    bo = open_page("Bo", "london")
    ada.wait_connected(NEAR_NEW_YORK)
    bo.wait_connected(NEAR_LONDON)
    ada.send("helo <b>wrld</b>")
    id = message_id(ada, "helo <b>wrld</b>")
    bo.wait_delivered(["helo <b>wrld</b>"])
    # only its author is offered the change
    assert row(ada, id)["actions"]
    assert not row(bo, id)["actions"]

    # When Ada edits it with the keyboard
    edit_with_keyboard(ada, id, "hello <b>world</b>")

    # Then both pages show the new text, as text, marked edited
    for chat in (ada, bo):
        wait_shows(chat, id, "hello <b>world</b>", "edited")
        assert row(chat, id)["version"] == "2"
        assert chat.page.locator("#messages b").count() == 0  # text, never markup

    # When she deletes it
    delete_with_keyboard(ada, id)

    # Then both pages show it deleted, its text gone from the page, and Ada can no longer change it
    for chat in (ada, bo):
        wait_shows(chat, id, DELETED_NOTE, "deleted")
        assert "world" not in chat.page.inner_text("#messages")
        assert not row(chat, id)["actions"]


def test_an_edit_and_a_delete_made_while_the_region_dies_arrive_after_the_failover(
    open_page: OpenPage, control: StackControl
) -> None:
    # Given Ada near us-east-1 with two messages, and Bo in London
    ada = open_page("Ada", NEAR_NEW_YORK)
    bo = open_page("Bo", "london")
    ada.wait_connected(NEAR_NEW_YORK)
    bo.wait_connected(NEAR_LONDON)
    ada.send("to be fixed")
    ada.send("to be taken back")
    fixed, taken = message_id(ada, "to be fixed"), message_id(ada, "to be taken back")
    bo.wait_delivered(["to be fixed", "to be taken back"])

    # When us-east-1 dies (and routing leaves it) and Ada, still on its socket, edits and deletes
    control.invert(NEAR_NEW_YORK, True)
    control.wait_health(NEAR_NEW_YORK, False)
    control.region_process(NEAR_NEW_YORK, "stop")
    edit_with_keyboard(ada, fixed, "fixed")
    delete_with_keyboard(ada, taken)

    # Then the outbox carries both to eu-west-2, and both pages show them
    ada.wait_connected(NEAR_LONDON)
    for chat in (ada, bo):
        wait_shows(chat, fixed, "fixed", "edited")
        wait_shows(chat, taken, DELETED_NOTE, "deleted")
    assert row(ada, fixed)["note"] == ""
    assert ada.page.inner_text("#outbox-count") == "0"

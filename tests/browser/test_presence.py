"""Who is in the room and who is typing, on the chat page, across the local stack's two regions
(issue 27).

Each test is given / when / then in a person's terms; every wait is on what the page shows. The
frames a page receives or sends are read from the browser's WebSocket traffic where the test must
say that something did not happen (no presence frame for a second tab, nothing for a renewal).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.browser.conftest import OpenPage
from tests.browser.pages import NEAR_LONDON, NEAR_NEW_YORK
from tests.e2e.chat import until_regions_count_each_other

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def regions_count_each_other(stack: dict[str, Any]) -> None:
    # In a thread of its own: Playwright's sync API holds this thread's event loop.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, until_regions_count_each_other(stack)).result()


HOSTILE_NAME = "<img src=x onerror=window.__pwned=1>"
RENEW_AFTER_MS = 6_000  # instead of the page's 115 minutes
STREAM_SETTLE_S = 3  # long enough for a presence frame that should not come to have come


def frames(
    sent: list[dict[str, Any]] | None = None, received: list[dict[str, Any]] | None = None
) -> Callable[[Any], None]:
    """A before_load that records the page's WebSocket frames (parsed), over all its sockets."""

    def parse(payload: str | bytes) -> dict[str, Any]:
        try:
            value = json.loads(payload)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def before_load(page: Any) -> None:
        def watch(socket: Any) -> None:
            if sent is not None:
                socket.on("framesent", lambda payload: sent.append(parse(payload)))
            if received is not None:
                socket.on("framereceived", lambda payload: received.append(parse(payload)))

        page.on("websocket", watch)

    return before_load


def leaves_of(received: list[dict[str, Any]], user_id: str) -> list[dict[str, Any]]:
    """The `leave` frames about `user_id`. (An `enter` for a user already listed changes nothing
    shown: the page takes it as it comes, and the tests do not count it.)"""
    return [
        f
        for f in received
        if f.get("type") == "presence"
        and f.get("event") == "leave"
        and (f.get("user") or {}).get("id") == user_id
    ]


# Every count the member list shows, from the moment the test starts watching (`window.__counts`).
WATCH_COUNTS = """() => {
  const node = document.querySelector('#presence-count');
  window.__counts = [node.textContent];
  new MutationObserver(() => window.__counts.push(node.textContent))
    .observe(node, {childList: true, characterData: true, subtree: true});
}"""


def test_two_people_in_two_regions_see_each_other_and_the_count_drops_when_one_closes(
    open_page: OpenPage,
) -> None:
    # given Ada near us-east-1 and Bo in London, in the same room
    ada = open_page("Ada", NEAR_NEW_YORK)
    bo = open_page("Bo", "london")
    ada.wait_connected(NEAR_NEW_YORK)
    bo.wait_connected(NEAR_LONDON)

    # then each sees both, count 2, and their own entry marked as theirs (by user id)
    for chat in (ada, bo):
        chat.wait_presence(2, ["Ada", "Bo"])
        shown = chat.presence()
        assert set(shown["ids"]) == {ada.user_id, bo.user_id}
        assert shown["mine"] == [chat.user_id]

    # when Bo closes the page
    bo.close()

    # then Ada's page shows her alone
    ada.wait_presence(1, ["Ada"])


def test_a_second_tab_of_the_same_user_does_not_change_the_count(open_page: OpenPage) -> None:
    # given Ada and Bo in two regions, each seeing the other; Bo's page records what it receives
    received: list[dict[str, Any]] = []
    ada = open_page("Ada", NEAR_NEW_YORK)
    bo = open_page("Bo", "london", before_load=frames(received=received))
    for chat in (ada, bo):
        chat.wait_presence(2, ["Ada", "Bo"])
    received.clear()
    bo.page.evaluate(WATCH_COUNTS)

    # when Ada opens a second tab (the same session: the same user) and writes from it
    tab = ada.open_tab()
    tab.wait_connected(NEAR_NEW_YORK)
    assert tab.user_id == ada.user_id
    tab.wait_presence(2, ["Ada", "Bo"])
    tab.send("from Ada's second tab")
    bo.wait_delivered(["from Ada's second tab"])
    time.sleep(STREAM_SETTLE_S)

    # then Bo's page never showed another count than 2, and Ada never left
    assert set(bo.page.evaluate("window.__counts")) == {"2"}
    assert leaves_of(received, ada.user_id) == []

    # and when the second tab closes, Ada is still there (her first tab is open)
    tab.page.close()
    ada.send("from Ada's first tab")
    bo.wait_delivered(["from Ada's first tab"])
    time.sleep(STREAM_SETTLE_S)
    bo.wait_presence(2, ["Ada", "Bo"])
    assert set(bo.page.evaluate("window.__counts")) == {"2"}
    assert leaves_of(received, ada.user_id) == []


def test_typing_shows_who_is_typing_to_the_others_and_clears_itself(open_page: OpenPage) -> None:
    # given Ada and Bo in two regions; Ada's page records what it sends
    sent: list[dict[str, Any]] = []
    ada = open_page("Ada", NEAR_NEW_YORK, before_load=frames(sent=sent))
    bo = open_page("Bo", "london")
    for chat in (ada, bo):
        chat.wait_presence(2, ["Ada", "Bo"])

    # when Ada types, a key every 100 ms, and stops without sending
    started = time.monotonic()
    ada.page.get_by_role("textbox", name="Message").press_sequentially("hello Bo, how ar", delay=100)
    typed_for_s = time.monotonic() - started

    # then Bo sees that Ada is typing; Ada does not see herself
    bo.wait_typing("Ada is typing…")
    assert ada.typing_line == ""
    # one typing frame per 2 s at most, exactly the contract's, never in the outbox
    typing = [frame for frame in sent if frame.get("action") == "typing"]
    assert 1 <= len(typing) <= 1 + int(typed_for_s // 2)
    assert all(frame == {"action": "typing", "room": bo.page.text_content("#room-name")} for frame in typing)
    assert ada.page.text_content("#outbox-count") == "0"

    # and Bo's line clears itself a few seconds after Ada's last typing frame
    bo.wait_typing("", timeout=10_000)
    assert bo.messages() == []


def test_a_message_clears_its_authors_typing_at_once(open_page: OpenPage) -> None:
    # given Bo sees Ada typing
    ada = open_page("Ada", NEAR_NEW_YORK)
    bo = open_page("Bo", "london")
    for chat in (ada, bo):
        chat.wait_presence(2, ["Ada", "Bo"])
    box = ada.page.get_by_role("textbox", name="Message")
    box.press_sequentially("on my way", delay=50)
    bo.wait_typing("Ada is typing…")

    # when Ada sends her message
    box.press("Enter")

    # then the moment Bo's page shows it, it no longer says Ada is typing
    shown = bo.page.wait_for_function(
        """() => {
          const texts = [...document.querySelectorAll('#messages .text')].map((n) => n.textContent);
          return texts.includes('on my way') && {typing: document.querySelector('#typing').textContent};
        }"""
    ).json_value()
    assert shown == {"typing": ""}


def test_a_hostile_name_is_shown_as_text_in_the_member_list_and_the_typing_line(open_page: OpenPage) -> None:
    # given Ada, and Mallory whose name is markup, in two regions
    ada = open_page("Ada", NEAR_NEW_YORK)
    mallory = open_page(HOSTILE_NAME, "london")

    # when Mallory is in the room and types
    ada.wait_presence(2, [HOSTILE_NAME, "Ada"])
    mallory.page.get_by_role("textbox", name="Message").press_sequentially("hi", delay=50)

    # then Ada's page shows the characters, made no element from them and ran nothing
    ada.wait_typing(f"{HOSTILE_NAME} is typing…")
    for chat in (ada, mallory):
        chat.wait_presence(2, [HOSTILE_NAME, "Ada"])
        assert chat.page.locator("#members img, #typing img, .presence img").count() == 0
        assert chat.page.evaluate("typeof window.__pwned") == "undefined"


# Every data-state the connection line takes, from the first: a renewal must not show an outage.
RECORD_STATES = """document.addEventListener('DOMContentLoaded', () => {
  const node = document.querySelector('#connection');
  window.__states = [];
  new MutationObserver(() => window.__states.push(node.dataset.state))
    .observe(node, {attributes: true, attributeFilter: ['data-state']});
});"""


def test_renewing_the_connection_before_the_2_hour_limit_shows_no_outage_and_no_leave(
    open_page: OpenPage,
) -> None:
    # given Ada, whose page renews its socket after 6 s instead of 115 minutes, and Bo, who
    # records what his page receives
    sockets: list[Any] = []
    received: list[dict[str, Any]] = []

    def renew_soon(page: Any) -> None:
        def config(route: Any) -> None:
            route.fulfill(json={**route.fetch().json(), "renewSocketAfterMs": RENEW_AFTER_MS})

        page.route("**/config.json", config)
        page.add_init_script(RECORD_STATES)
        page.on("websocket", lambda socket: sockets.append(socket))

    ada = open_page("Ada", NEAR_NEW_YORK, before_load=renew_soon)
    bo = open_page("Bo", "london", before_load=frames(received=received))
    ada.wait_connected(NEAR_NEW_YORK)
    for chat in (ada, bo):
        chat.wait_presence(2, ["Ada", "Bo"])
    states_before = len(ada.page.evaluate("window.__states"))
    received.clear()
    bo.page.evaluate(WATCH_COUNTS)

    # when Ada's page renews its socket twice, and Ada and Bo write meanwhile
    ada.page.wait_for_function(
        "() => document.querySelector('#log').innerText.split('renewed before').length > 2",
        timeout=4 * RENEW_AFTER_MS + 20_000,
    )
    ada.send("written across renewals")
    bo.send("read across renewals")
    texts = ["written across renewals", "read across renewals"]
    for chat in (ada, bo):
        chat.wait_delivered(texts)
    time.sleep(STREAM_SETTLE_S)

    # then Ada's page never left "connected", each old socket was closed by the page, each
    # message is shown once, and Bo's page never showed Ada leave (nor another count)
    assert set(ada.page.evaluate("window.__states")[states_before:]) == {"connected"}
    assert len(sockets) >= 3
    assert sockets[0].is_closed()
    assert sockets[1].is_closed()
    for chat in (ada, bo):
        rows = [row for row in chat.messages() if row["text"] in texts]
        assert sorted(row["text"] for row in rows) == sorted(texts)
        chat.wait_presence(2, ["Ada", "Bo"])
    assert set(bo.page.evaluate("window.__counts")) == {"2"}
    assert leaves_of(received, ada.user_id) == []
    assert "lost" not in ada.log()

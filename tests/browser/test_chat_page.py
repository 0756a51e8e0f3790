"""The chat page in a real browser against the local two-region stack (issue 6).

Each test is given / when / then in a person's terms; every wait is on what the page shows.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.credentials import Credentials

from chat import ulid
from chat.model import iso_time
from chat.ports import Delivery
from chat.push import ManagementApiPusher
from chat.store import USER_INDEX
from stack_definition.template import CONNECTIONS, load, table_names
from tests.browser.conftest import OpenPage
from tests.browser.pages import NEAR_LONDON, NEAR_NEW_YORK, ChatPage, StackControl, assert_each_once

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]


def side_by_side(browser: Any, left: bytes, right: bytes, captions: tuple[str, str]) -> bytes:
    """One image of two pages: the browser lays the two screenshots out next to each other."""
    page = browser.new_page(viewport={"width": 1820, "height": 820})
    figures = "".join(
        f'<figure><img src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        f"<figcaption>{caption}</figcaption></figure>"
        for png, caption in zip((left, right), captions, strict=True)
    )
    page.set_content(
        "<style>body{margin:0;display:flex;gap:20px;padding:10px;background:#d9d9d4;font:15px sans-serif}"
        "figure{margin:0}img{display:block;border:1px solid #888}</style>" + figures
    )
    image: bytes = page.screenshot(full_page=True)
    page.close()
    return image


# The README's picture comes from this test: a room named as a user would name it (still one no
# other test uses).
@pytest.mark.parametrize("room", ["lobby"])
def test_two_people_in_different_regions_see_each_others_messages_with_their_routes(
    open_page: OpenPage, browser: Any, screenshots: Path
) -> None:
    # given Ada near us-east-1 and Bo in London, in the same room
    ada = open_page("Ada", NEAR_NEW_YORK)
    bo = open_page("Bo", "london")
    ada.wait_connected(NEAR_NEW_YORK)
    bo.wait_connected(NEAR_LONDON)

    # when each sends a message
    ada.send("Hello from Virginia")
    bo.send("Hello from London")

    # then both see both, accepted where each was sent and delivered by their own region
    texts = ["Hello from Virginia", "Hello from London"]
    for chat, own_region in ((ada, NEAR_NEW_YORK), (bo, NEAR_LONDON)):
        chat.wait_delivered(texts)
        assert_each_once(chat, texts)
        shown = chat.by_text()
        assert shown["Hello from Virginia"]["accepted"] == NEAR_NEW_YORK
        assert shown["Hello from London"]["accepted"] == NEAR_LONDON
        assert {shown[text]["delivered"] for text in texts} == {own_region}
        assert {shown[text]["transport"] for text in texts} == {"websocket"}

    left = ada.page.screenshot(path=screenshots / f"two-regions-{NEAR_NEW_YORK}.png")
    right = bo.page.screenshot(path=screenshots / f"two-regions-{NEAR_LONDON}.png")
    image = side_by_side(
        browser, left, right, (f"Ada, near {NEAR_NEW_YORK}", f"Bo, in London ({NEAR_LONDON})")
    )
    (screenshots / "two-regions.png").write_bytes(image)
    # The README's picture: written when missing or asked for, so a test run leaves git clean.
    readme_picture = ROOT / "docs" / "screenshot.png"
    if not readme_picture.exists() or os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        readme_picture.write_bytes(image)


HOSTILE = [
    "<img src=x onerror=window.__pwned=1>",
    "<script>window.__pwned=1</script>",
    '"><svg onload=window.__pwned=1>',
]


def test_a_hostile_message_is_shown_as_text_and_runs_nothing(open_page: OpenPage, screenshots: Path) -> None:
    # given Mallory and Ada in a room
    mallory = open_page("<b>Mallory</b>", "new-york")
    ada = open_page("Ada", "london")
    mallory.wait_connected(NEAR_NEW_YORK)

    # when Mallory sends markup, live, and Carol joins later and reads it from history
    for text in HOSTILE:
        mallory.send(text)
    ada.wait_delivered(HOSTILE)
    carol = open_page("Carol", "paris")
    carol.wait_delivered(HOSTILE)

    # then every page shows the characters, made no element from them and ran no script
    for chat in (mallory, ada, carol):
        chat.wait_delivered(HOSTILE)
        assert [row["text"] for row in chat.messages()] == HOSTILE
        assert {row["author"] for row in chat.messages()} == {"<b>Mallory</b>"}
        assert chat.page.locator("#messages img, #messages script, #messages svg, #messages b").count() == 0
        assert chat.page.evaluate("typeof window.__pwned") == "undefined"
    carol.page.screenshot(path=screenshots / "hostile-text.png")


def test_a_person_on_a_phone_can_join_and_chat_with_the_keyboard_alone(
    browser: Any, stack: dict[str, Any], room: str, screenshots: Path
) -> None:
    # given a phone-sized screen
    context = browser.new_context(base_url=stack["frontDoorUrl"], viewport={"width": 375, "height": 740})
    page = context.new_page()
    try:
        page.goto("/")
        page.wait_for_selector("body[data-ready=true]")

        # when they type their name, Tab to the room, press Enter, type a message and press Enter
        page.keyboard.type("Pat")
        page.keyboard.press("Tab")
        page.keyboard.press("ControlOrMeta+a")
        page.keyboard.type(room)
        page.keyboard.press("Enter")
        page.wait_for_selector("#connection[data-state=connected]")
        page.keyboard.type("typed on a phone")
        page.keyboard.press("Enter")

        # then the message is delivered and nothing is wider than the screen
        chat = ChatPage(page, "Pat")
        chat.wait_delivered(["typed on a phone"])
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.screenshot(path=screenshots / "phone.png", full_page=True)
    finally:
        context.close()


def test_the_location_control_moves_the_connection_to_the_nearest_region(open_page: OpenPage) -> None:
    # given Ada near us-east-1
    ada = open_page("Ada", NEAR_NEW_YORK)
    ada.wait_connected(NEAR_NEW_YORK)

    # when she picks London as her simulated location
    ada.page.get_by_label("Simulated location").select_option("london")

    # then she reconnects to eu-west-2, and what she sends is accepted there
    ada.wait_connected(NEAR_LONDON)
    ada.send("now in London")
    ada.wait_delivered(["now in London"])
    assert ada.by_text()["now in London"]["accepted"] == NEAR_LONDON
    cookies = {c["name"]: c["value"] for c in ada.page.context.cookies()}
    assert cookies["rc-location"] == "london"


def test_a_page_that_cannot_open_a_websocket_sends_and_reads_over_http(
    open_page: OpenPage, screenshots: Path
) -> None:
    # given Ada, whose network lets no WebSocket through, and Bo in London
    def block_websockets(page: Any) -> None:
        def config(route: Any) -> None:
            body = route.fetch().json()
            body["websocketUrl"] = "ws://127.0.0.1:9/"  # nothing listens on the discard port
            for endpoints in body["regions"].values():
                endpoints["websocketUrl"] = "ws://127.0.0.1:9/"
            route.fulfill(json=body)

        page.route("**/config.json", config)

    ada = open_page("Ada", NEAR_NEW_YORK, before_load=block_websockets)
    bo = open_page("Bo", "london")
    bo.wait_connected(NEAR_LONDON)

    # when both send
    ada.send("sent over HTTP")
    bo.send("sent over a WebSocket")

    # then Ada's goes over the HTTP API and reaches Bo live; Bo's reaches Ada through history
    texts = ["sent over HTTP", "sent over a WebSocket"]
    for chat in (ada, bo):
        chat.wait_delivered(texts)
        assert_each_once(chat, texts)
    on_ada, on_bo = ada.by_text(), bo.by_text()
    assert on_ada["sent over HTTP"]["transport"] == "http"
    assert on_ada["sent over HTTP"]["delivered"] == f"HTTP reply ({NEAR_NEW_YORK})"
    assert on_ada["sent over a WebSocket"]["delivered"] == f"history ({NEAR_NEW_YORK})"
    assert on_bo["sent over HTTP"]["delivered"] == NEAR_LONDON
    assert "sending over HTTP" in ada.log()
    ada.page.screenshot(path=screenshots / "http-fallback.png")


def test_messages_sent_while_the_routed_region_is_dead_go_straight_to_the_other_region_once(
    open_page: OpenPage, control: StackControl, screenshots: Path
) -> None:
    # given Ada connected in us-east-1 and Bo in London
    ada = open_page("Ada", NEAR_NEW_YORK)
    bo = open_page("Bo", "london")
    ada.wait_connected(NEAR_NEW_YORK)
    bo.wait_connected(NEAR_LONDON)

    # when us-east-1's process dies, and the routed name keeps answering with it (its inverted
    # check reads healthy while the region fails: a stale DNS answer does the same) ...
    control.region_process(NEAR_NEW_YORK, "stop")
    ada.send(f"sent while {NEAR_NEW_YORK} is down 1")
    ada.send(f"sent while {NEAR_NEW_YORK} is down 2")
    control.wait_health(NEAR_NEW_YORK, False)
    control.invert(NEAR_NEW_YORK, True)
    control.wait_health(NEAR_NEW_YORK, True)
    ada.send(f"sent while {NEAR_NEW_YORK} is down 3")
    bo.send("Bo, during the outage")
    # ... and Cy, near us-east-1 too, opens the page now
    cy = open_page("Cy", "new-york")

    # then Cy goes straight to eu-west-2's own endpoint, Ada is there too (straight, or routed if the
    # front door noticed the outage before she reconnected), and everyone gets every message once
    texts = [*(f"sent while {NEAR_NEW_YORK} is down {n}" for n in (1, 2, 3)), "Bo, during the outage"]
    cy.wait_connected(NEAR_LONDON)
    assert f"routed name does not answer: going straight to {NEAR_LONDON}" in cy.log()
    assert cy.page.inner_text("#region") == f"{NEAR_LONDON} (direct)"
    ada.wait_connected(NEAR_LONDON)
    cy.send("Cy, direct")
    texts.append("Cy, direct")
    for chat in (ada, bo, cy):
        chat.wait_delivered(texts)
        assert_each_once(chat, texts)
    assert {ada.by_text()[t]["accepted"] for t in texts} == {NEAR_LONDON}
    cy.page.screenshot(path=screenshots / "region-down-direct.png")


def test_messages_written_while_every_region_is_down_wait_in_the_outbox_and_arrive_once(
    open_page: OpenPage, control: StackControl, screenshots: Path
) -> None:
    # given Ada and Bo in different regions
    ada = open_page("Ada", NEAR_NEW_YORK)
    bo = open_page("Bo", "london")
    ada.wait_connected(NEAR_NEW_YORK)
    bo.wait_connected(NEAR_LONDON)

    # when both regions go down and both write
    control.region_process(NEAR_NEW_YORK, "stop")
    control.region_process(NEAR_LONDON, "stop")
    ada.send("Ada, offline 1")
    ada.send("Ada, offline 2")
    bo.send("Bo, offline")
    for chat, count in ((ada, "2"), (bo, "1")):
        chat.page.wait_for_selector("#connection[data-state=reconnecting]")
        chat.page.wait_for_function(
            "(n) => document.querySelector('#outbox-count').textContent === n", arg=count
        )
    assert {row["state"] for row in ada.messages()} == {"pending"}
    ada.page.screenshot(path=screenshots / "all-regions-down-outbox.png")

    # and the regions come back
    control.restore()

    # then every message arrives once on both pages and the outboxes are empty
    texts = ["Ada, offline 1", "Ada, offline 2", "Bo, offline"]
    for chat in (ada, bo):
        chat.wait_delivered(texts)
        chat.page.wait_for_selector("#connection[data-state=connected]")
        assert_each_once(chat, texts)
        assert chat.page.inner_text("#outbox-count") == "0"
    ada.page.screenshot(path=screenshots / "all-regions-recovered.png")


def test_a_failover_leaves_every_page_with_every_message_exactly_once(
    open_page: OpenPage, control: StackControl, screenshots: Path
) -> None:
    # given two people connected in us-east-1 and one in eu-west-2, chatting
    ada = open_page("Ada", NEAR_NEW_YORK)
    cy = open_page("Cy", "new-york")
    bo = open_page("Bo", "london")
    pages = (ada, cy, bo)
    for chat, region in ((ada, NEAR_NEW_YORK), (cy, NEAR_NEW_YORK), (bo, NEAR_LONDON)):
        chat.wait_connected(region)
    texts = []

    def say(chat: ChatPage, text: str) -> None:
        chat.send(text)
        texts.append(text)

    say(ada, "before the drill")
    say(bo, "Bo before the drill")

    # when the drill inverts us-east-1's health check, then kills the region, while all keep talking
    control.invert(NEAR_NEW_YORK, True)
    control.wait_health(NEAR_NEW_YORK, False)
    say(ada, "after the inversion")
    say(cy, "Cy after the inversion")
    control.region_process(NEAR_NEW_YORK, "stop")
    say(ada, "right after the kill")
    say(bo, "Bo right after the kill")
    say(cy, "Cy right after the kill")

    # then the us-east-1 pages fail over to eu-west-2 and every page shows every message once
    for chat in (ada, cy):
        chat.wait_connected(NEAR_LONDON)
        assert f"failover: {NEAR_NEW_YORK} → {NEAR_LONDON}" in chat.log()
    say(ada, f"Ada from {NEAR_LONDON}")
    for chat in pages:
        chat.wait_delivered(texts)
        assert_each_once(chat, texts)
    ada.page.screenshot(path=screenshots / "after-failover.png")


# ---- sessions (issue 19) ---------------------------------------------------------------------


def test_a_name_the_server_refuses_keeps_the_join_form_with_its_reason(
    browser: Any, stack: dict[str, Any]
) -> None:
    # given the join form
    context = browser.new_context(base_url=stack["frontDoorUrl"])
    page = context.new_page()
    page.goto("/")
    page.wait_for_selector("body[data-ready=true]")
    # when a guest joins under a name that hides a bidi override
    page.get_by_role("textbox", name="Your name").fill("\u202enimda")
    page.get_by_role("textbox", name="Room").fill("lobby")
    page.get_by_role("button", name="Join").click()
    # then the form stays, saying why, and nobody is signed in
    page.wait_for_function("() => document.querySelector('#join-error').textContent.includes('invalid_name')")
    assert page.is_hidden("#chat")
    assert page.evaluate("localStorage.getItem('rc-session')") is None
    context.close()


def test_two_people_with_one_name_are_told_apart_by_user_id(open_page: OpenPage) -> None:
    # given two guests who both call themselves Ada, in two regions
    first = open_page("Ada", NEAR_NEW_YORK)
    second = open_page("Ada", "london")
    first.wait_connected(NEAR_NEW_YORK)
    second.wait_connected(NEAR_LONDON)
    assert first.user_id != second.user_id

    # when each sends
    first.send("from the first Ada")
    second.send("from the second Ada")

    # then each page marks only its own message as its own, by the author's user id
    texts = ["from the first Ada", "from the second Ada"]
    for chat, own in ((first, "from the first Ada"), (second, "from the second Ada")):
        chat.wait_delivered(texts)
        assert_each_once(chat, texts)
        shown = chat.by_text()
        assert {text for text, row in shown.items() if row["mine"]} == {own}
        assert shown[own]["authorId"] == chat.user_id
        assert {row["author"] for row in shown.values()} == {"Ada"}


def test_a_refused_session_signs_in_again_and_the_outbox_arrives_once(
    open_page: OpenPage, screenshots: Path
) -> None:
    # given Ada and Bo chatting
    ada = open_page("Ada", NEAR_NEW_YORK)
    bo = open_page("Bo", "london")
    ada.wait_connected(NEAR_NEW_YORK)
    bo.wait_connected(NEAR_LONDON)
    ada.send("before the bad token")
    before = ada.user_id

    # when Ada's kept session is no longer one any region accepts (tampered with), she comes back
    # and writes at once: the WebSocket handshake and every HTTP call answer 401
    kept = ada.stored_session()
    header, claims, signature = kept["token"].split(".")
    ada.store_session({**kept, "token": f"{header}.{claims}.{signature[::-1]}"})
    ada.reload_and_join()
    ada.send("written with a refused session 1")
    ada.send("written with a refused session 2")

    # then the page signs in again (a new guest id, the same name), nothing in the outbox is lost,
    # everyone sees every message once, and Ada's page still marks all three as hers
    texts = ["before the bad token", "written with a refused session 1", "written with a refused session 2"]
    for chat in (ada, bo):
        chat.wait_delivered(texts)
        assert_each_once(chat, texts)
    ada.page.wait_for_function("() => document.querySelector('#outbox-count').textContent === '0'")
    assert "the session was refused (401): signing in again" in ada.log()
    assert ada.user_id != before
    assert {row["text"] for row in ada.messages() if row["mine"]} == set(texts)
    assert {row["authorId"] for row in bo.messages()} == {before, ada.user_id}
    ada.page.screenshot(path=screenshots / "session-refused.png")


def test_a_session_near_its_end_is_renewed_for_the_same_user(open_page: OpenPage) -> None:
    # given Ada, whose kept session is about to end (the page reads expiresAt; the token itself is
    # good for the template's SessionTtlSeconds, at least 300 s, too long for a test to wait out)
    ada = open_page("Ada", NEAR_NEW_YORK)
    ada.wait_connected(NEAR_NEW_YORK)
    kept = ada.stored_session()
    soon = ada.page.evaluate("() => new Date(Date.now() + 4000).toISOString()")
    ada.store_session({**kept, "expiresAt": soon, "receivedAt": ada.page.evaluate("Date.now()")})

    # when she comes back to the page
    ada.reload_and_join()

    # then it renews the session before the end: a new token for the same user, and chat goes on
    ada.page.wait_for_function(
        "(old) => JSON.parse(localStorage.getItem('rc-session')).token !== old", arg=kept["token"]
    )
    renewed = ada.stored_session()
    assert renewed["user"] == kept["user"]
    assert ada.user_id == kept["user"]["id"]
    assert "session renewed" in ada.log()
    ada.send("after the renewal")
    ada.wait_delivered(["after the renewal"])
    assert ada.by_text()["after the renewal"]["mine"]


def test_frames_from_pages_that_arrive_out_of_order_and_twice_are_shown_in_id_order_once(
    open_page: OpenPage, stack: dict[str, Any], room: str
) -> None:
    # given a reader whose region fans a large room out in pages: each page's worker posts the
    # batch's frames to its connections, so one connection can get later messages first, and a
    # retried page sends some again
    reader = open_page("Bea", NEAR_NEW_YORK)
    reader.wait_connected(NEAR_NEW_YORK)
    connection_id = _connection_of(stack, NEAR_NEW_YORK, reader.user_id)
    base = int(time.time() * 1000)
    frames = [
        {
            "type": "message",
            "message": {
                "id": ulid.new(base + index),
                "room": room,
                "author": "Cy",
                "authorId": "g_" + "C" * 26,
                "text": f"paged {index}",
                "sentAt": iso_time(base + index),
                "acceptedRegion": NEAR_LONDON,
                "transport": "websocket",
            },
            "deliveredBy": NEAR_NEW_YORK,
        }
        for index in range(6)
    ]

    # when the workers' posts reach it newest first, and a retried page posts half of them again
    pusher = ManagementApiPusher(
        stack["regions"][NEAR_NEW_YORK]["managementUrl"],
        region=NEAR_NEW_YORK,
        credentials=Credentials("local", "local"),
        pool_size=1,
    )
    for frame in [*reversed(frames), *frames[::2]]:
        assert pusher.push(connection_id, json.dumps(frame).encode()) is Delivery.DELIVERED

    # then the page shows each message once, in id order, whatever order they came in
    texts = [frame["message"]["text"] for frame in frames]
    reader.wait_delivered(texts)
    assert_each_once(reader, texts)
    assert [row["text"] for row in reader.messages() if row["text"] in texts] == texts


def _connection_of(stack: dict[str, Any], region: str, user_id: str) -> str:
    """The page's connection id, read from its region's connections table by the user's index."""
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=stack["awsEndpointUrl"],
        region_name=region,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    table = table_names(load())[CONNECTIONS]
    items = dynamodb.query(
        TableName=table,
        IndexName=USER_INDEX,
        KeyConditionExpression="userId = :user",
        ExpressionAttributeValues={":user": {"S": user_id}},
    )["Items"]
    (item,) = items
    return str(item["connectionId"]["S"])


# The page's heartbeat (frontend/connection.js): a ping after 150 s ± 10% of silence (the interval
# docs/architecture.md prices), and a connection that gets no frame within 10 s of it is dead.
PING_NOT_YET_MS = 125_000
PING_DUE_MS = 170_000
PONG_TIMEOUT_MS = 10_000


def test_an_idle_page_pings_only_as_often_as_priced_and_the_pong_is_never_shown(open_page: OpenPage) -> None:
    # given Ada, alone and idle in a room (the page's clock is ours to move)
    sockets: list[Any] = []
    sent: list[Any] = []

    def before_load(page: Any) -> None:
        page.clock.install()
        page.on("websocket", lambda s: sockets.append(s))
        page.on("websocket", lambda s: s.on("framesent", lambda payload: sent.append(json.loads(payload))))

    ada = open_page("Ada", NEAR_NEW_YORK, before_load=before_load)
    ada.wait_connected(NEAR_NEW_YORK)

    # when two minutes pass in silence, the page has not pinged yet
    ada.page.clock.fast_forward(PING_NOT_YET_MS)
    assert {"action": "ping"} not in sent

    # and when the heartbeat's silence has passed, it pings and the API answers pong
    with sockets[-1].expect_event("framereceived", predicate=lambda p: json.loads(p).get("type") == "pong"):
        ada.page.clock.fast_forward(PING_DUE_MS - PING_NOT_YET_MS)

    # then one ping went, and nothing of it is shown: no message, no reconnect, same region
    assert sent == [{"action": "ping"}]
    assert ada.messages() == []
    assert "pong" not in ada.page.inner_text("#chat")
    ada.wait_connected(NEAR_NEW_YORK)
    assert len(sockets) == 1
    assert "no answer" not in ada.log()


def test_an_idle_page_whose_region_goes_silent_reconnects_and_catches_up(open_page: OpenPage) -> None:
    # given Ada, idle, and Bo in the other region
    silent = {"on": False, "first": True}

    def before_load(page: Any) -> None:
        page.clock.install()

        def relay(route: Any) -> None:
            # The first connection goes silent on demand: frames either way are swallowed, as a
            # region whose API stopped answering would (no close, no error: just nothing).
            first, silent["first"] = silent["first"], False
            server = route.connect_to_server()
            route.on_message(lambda m: None if first and silent["on"] else server.send(m))
            server.on_message(lambda m: None if first and silent["on"] else route.send(m))

        page.route_web_socket(re.compile(r".*"), relay)

    ada = open_page("Ada", NEAR_NEW_YORK, before_load=before_load)
    bo = open_page("Bo", "london")
    ada.wait_connected(NEAR_NEW_YORK)
    bo.wait_connected(NEAR_LONDON)

    # when Ada's connection goes silent, Bo writes, and Ada's heartbeat comes due then times out
    silent["on"] = True
    bo.send("while Ada's region was silent")
    bo.wait_delivered(["while Ada's region was silent"])
    ada.page.clock.fast_forward(PING_DUE_MS)
    ada.page.clock.fast_forward(PONG_TIMEOUT_MS + 2_000)

    # then Ada's page notices, reconnects (away from the silent region) and catches up, once
    ada.wait_logged(f"leaving {NEAR_NEW_YORK}: no answer")
    ada.wait_delivered(["while Ada's region was silent"])
    assert_each_once(ada, ["while Ada's region was silent"])
    assert ada.page.get_attribute("#connection", "data-state") == "connected"

"""The chat page when a region is up but its backend fails (issue 23), in a real browser against
the local two-region stack.

us-east-1's DynamoDB or Lambda fails under running pages (the local stack's fault controls): its
API Gateway keeps answering, its sockets stay open. The page must judge the service, not the
socket: leave the region, show every message once, and carry on after `heal` without a reload.
Each wait is on what the page shows; the listener's waits are long because it finds out by its
active-room heartbeat (20 s). How long each took is written to test-results/gray-failures.json
(a figure, never asserted here).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stack_definition.repository import ROOT
from tests.browser.conftest import OpenPage
from tests.browser.pages import NEAR_LONDON, NEAR_NEW_YORK, ChatPage, StackControl, assert_each_once

pytestmark = pytest.mark.browser

SERVICES = ("dynamodb", "lambda")
RECOVERY_MS = 90_000  # generous: a listener notices at its next heartbeat, 20 s ± 10% after a frame
FIGURES = ROOT / "test-results" / "gray-failures.json"

# Both regions' history of the room, read as the page reads it (the signed-in user's token, each
# region's own endpoint), every half second: `window.__historiesEqual` becomes the number of
# messages once both hold the same ones, after replication caught up.
COMPARE_HISTORIES = """(room) => {
  const read = async (httpUrl, token) => {
    const answer = await fetch(`${httpUrl}/rooms/${room}/messages?limit=100`,
                               {headers: {Authorization: `Bearer ${token}`}});
    if (!answer.ok) return null;
    return (await answer.json()).messages.map((m) => `${m.id}|${m.authorId}`).join(',');
  };
  const compare = async () => {
    const config = await (await fetch('/config.json')).json();
    const token = JSON.parse(localStorage.getItem('rc-session')).token;
    const urls = Object.values(config.regions).map((region) => region.httpUrl);
    const [first, ...others] = await Promise.all(urls.map((url) => read(url, token)));
    if (first && others.every((other) => other === first)) window.__historiesEqual = first.split(',').length;
    else setTimeout(compare, 500);
  };
  compare();
}"""


@pytest.fixture(scope="module")
def figures() -> Iterator[dict[str, Any]]:
    """How long each scenario took, read off the pages' own logs; written at the end."""
    found: dict[str, Any] = {}
    yield found
    if found:
        FIGURES.parent.mkdir(parents=True, exist_ok=True)
        previous = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
        FIGURES.write_text(json.dumps({**previous, **found}, indent=2) + "\n")


def _first(chat: ChatPage, prefix: str) -> datetime:
    return next(when for when, text in chat.log_entries() if text.startswith(prefix))


def _seconds(start: datetime, end: datetime) -> float:
    return round((end - start).total_seconds(), 2)


def _mark_page(chat: ChatPage) -> None:
    """A value that lives as long as this page does: gone if it ever reloads."""
    chat.page.evaluate("() => { window.__sameLoad = true; }")


def _after_heal(ada: ChatPage, bo: ChatPage, control: StackControl, room: str, texts: list[str]) -> None:
    """After `heal`: both pages carry on without a reload, Ada stays where she moved, and both
    regions' histories converge."""
    control.heal(NEAR_NEW_YORK)
    control.wait_health(NEAR_NEW_YORK, True)
    ada.send("Ada, after the heal")
    bo.send("Bo, after the heal")
    texts += ["Ada, after the heal", "Bo, after the heal"]
    for chat in (ada, bo):
        chat.wait_delivered(texts, timeout=RECOVERY_MS)
        assert_each_once(chat, texts)
        assert chat.page.evaluate("() => window.__sameLoad === true"), f"{chat.author}'s page reloaded"
    # She does not move back on her own: the healed region is used by the next connection it must make.
    assert ada.region == NEAR_LONDON
    ada.page.evaluate(COMPARE_HISTORIES, room)
    equal = ada.page.wait_for_function("() => window.__historiesEqual", timeout=RECOVERY_MS)
    assert equal.json_value() == len(texts)


@pytest.mark.parametrize("service", SERVICES)
def test_a_sender_whose_regions_backend_fails_moves_and_every_message_arrives_once(
    service: str,
    open_page: OpenPage,
    control: StackControl,
    room: str,
    figures: dict[str, Any],
    screenshots: Path,
) -> None:
    # given Ada near us-east-1 and Bo in London, chatting
    ada = open_page("Ada", NEAR_NEW_YORK)
    bo = open_page("Bo", "london")
    ada.wait_connected(NEAR_NEW_YORK)
    bo.wait_connected(NEAR_LONDON)
    ada.send("Ada, before the fault")
    texts = ["Ada, before the fault"]
    for chat in (ada, bo):
        chat.wait_delivered(texts)
    _mark_page(ada)
    _mark_page(bo)

    # when us-east-1's service fails under her open page, and she types three messages
    control.fail(NEAR_NEW_YORK, service)
    typed_at = datetime.now(UTC)
    typed = [f"Ada, while {service} fails, {n}" for n in (1, 2, 3)]
    for text in typed:
        ada.send(text)
    texts += typed

    # then her page leaves us-east-1 for eu-west-2, says so, and both pages show each message once
    ada.wait_logged(f"leaving {NEAR_NEW_YORK}: ", timeout=RECOVERY_MS)
    ada.wait_connected(NEAR_LONDON, timeout=RECOVERY_MS)
    assert ada.page.inner_text("#connection") == f"connected: {NEAR_LONDON} (failover)"
    for chat in (ada, bo):
        chat.wait_delivered(texts, timeout=RECOVERY_MS)
        assert_each_once(chat, texts)
    assert {ada.by_text()[text]["accepted"] for text in typed} == {NEAR_LONDON}
    assert {row["text"] for row in ada.messages()} == set(texts)  # no error frame shown as a message
    ada.page.screenshot(path=screenshots / f"gray-{service}-sender.png")
    figures[f"sender, {service}"] = {
        "why it left": next(text for _, text in ada.log_entries() if text.startswith("leaving ")),
        "typed to first failed send (s)": _seconds(typed_at, _first(ada, "send ")),
        "typed to connected elsewhere (s)": _seconds(typed_at, _first(ada, "failover: ")),
        "typed to all three shown delivered (s)": _seconds(typed_at, datetime.now(UTC)),
    }

    # and after heal, the pages carry on without a reload and the regions converge
    _after_heal(ada, bo, control, room, texts)


@pytest.mark.parametrize("service", SERVICES)
def test_a_listener_whose_regions_backend_fails_moves_and_shows_every_later_message_once(
    service: str,
    open_page: OpenPage,
    control: StackControl,
    room: str,
    figures: dict[str, Any],
    screenshots: Path,
) -> None:
    # given Ada near us-east-1, who only reads, and Bo in London, who writes
    ada = open_page("Ada", NEAR_NEW_YORK)
    bo = open_page("Bo", "london")
    ada.wait_connected(NEAR_NEW_YORK)
    bo.wait_connected(NEAR_LONDON)
    bo.send("Bo, before the fault")
    texts = ["Bo, before the fault"]
    for chat in (ada, bo):
        chat.wait_delivered(texts)
    _mark_page(ada)
    _mark_page(bo)

    # when us-east-1's service fails under her open page, and Bo writes three messages
    control.fail(NEAR_NEW_YORK, service)
    fault_at = datetime.now(UTC)
    written = [f"Bo, while {service} fails in {NEAR_NEW_YORK}, {n}" for n in (1, 2, 3)]
    for text in written:
        bo.send(text)
    texts += written
    bo.wait_delivered(texts)

    # then Ada's page finds out without sending, moves to eu-west-2 and shows each message once
    ada.wait_delivered(texts, timeout=RECOVERY_MS)
    shown_at = datetime.now(UTC)
    assert_each_once(ada, texts)
    ada.wait_connected(NEAR_LONDON, timeout=RECOVERY_MS)
    assert f"leaving {NEAR_NEW_YORK}: " in ada.log()
    assert "pong" not in ada.page.inner_text("#chat")
    ada.page.screenshot(path=screenshots / f"gray-{service}-listener.png")
    figures[f"listener, {service}"] = {
        "why it left": next(text for _, text in ada.log_entries() if text.startswith("leaving ")),
        "fault to leaving (s)": _seconds(fault_at, _first(ada, f"leaving {NEAR_NEW_YORK}")),
        "fault to every later message shown (s)": _seconds(fault_at, shown_at),
    }

    # and after heal, the pages carry on without a reload and the regions converge
    _after_heal(ada, bo, control, room, texts)

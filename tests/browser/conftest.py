"""A local two-region stack and a headless Debian chromium for the browser tests.

Both live for this package only (not the whole session), so the other layers' tests never share
an event loop with Playwright's sync API, nor a stack with these tests' outages.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stack_definition.local_stack import QUICK, running_stack
from stack_definition.repository import ROOT
from tests.browser.pages import ChatPage, StackControl

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "test-results" / "screenshots"
_rooms = itertools.count(1)

OpenPage = Callable[..., ChatPage]


def _missing(what: str) -> None:
    """In CI a missing browser is a broken build; on a laptop it is a skip with instructions."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} (CI=true: the browser tests must run)", pytrace=False)
    pytest.skip(f"{what}: apt-get install -y chromium; pip install -r requirements-dev.txt")


# Every page and helper signs in a guest from this one address, more than the template's guest
# limits allow (tests/e2e/test_limits.py tests those limits on a stack of its own).
GENEROUS_GUEST_LIMITS = (
    "GuestSignInsPerMinute=100000",
    "GuestSignInBurst=100000",
    "GuestMessagesPerSecondPerRoom=1000",
    "GuestRoomBurst=1000",
)


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    options = [*QUICK, "--parameter-overrides", *GENEROUS_GUEST_LIMITS]
    with running_stack(tmp_path_factory.mktemp("browser-stack"), options) as info:
        yield info


@pytest.fixture(scope="package")
def playwright() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright Python package is not installed")
    with sync_playwright() as runner:
        yield runner


@pytest.fixture(scope="package")
def browser(playwright: Any) -> Iterator[Any]:
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is missing")
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


@pytest.fixture
def room(request: pytest.FixtureRequest) -> str:
    """A fresh room per test, so that no test sees another's messages."""
    return f"browser-{next(_rooms)}-" + re.sub(r"[^a-z0-9]+", "-", request.node.name[5:30].lower()).strip("-")


@pytest.fixture
def open_page(browser: Any, stack: dict[str, Any], room: str) -> Iterator[OpenPage]:
    pages: list[ChatPage] = []

    def open_(author: str, location: str, **kwargs: Any) -> ChatPage:
        chat = ChatPage.open(
            browser, stack["frontDoorUrl"], author=author, room=room, location=location, **kwargs
        )
        pages.append(chat)
        return chat

    yield open_
    for chat in pages:
        chat.close()


@pytest.fixture
def control(playwright: Any, stack: dict[str, Any]) -> Iterator[StackControl]:
    control = StackControl(playwright, stack)
    yield control
    control.restore()  # whatever the test did to the regions, the next one starts healthy
    control.close()

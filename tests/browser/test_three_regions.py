"""The chat page on a three-region local stack: a user in Tokyo is served by the Tokyo region,
chats with someone served by us-east-1, and can pick any region's location."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stack_definition.local_stack import QUICK, running_stack
from tests.browser.conftest import GENEROUS_GUEST_LIMITS, OpenPage
from tests.browser.pages import StackControl, assert_each_once

pytestmark = pytest.mark.browser

REGIONS = ("us-east-1", "eu-west-2", "ap-northeast-1")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, playwright: Any) -> Iterator[dict[str, Any]]:
    """This module's pages open on a stack of three regions (the package's has two), once each
    region has answered its own `/health` and the front door routes to all three: a health
    probe that a region's first (cold) answer made late would otherwise send Tokyo elsewhere."""
    options = [*QUICK, "--regions", ",".join(REGIONS), "--parameter-overrides", *GENEROUS_GUEST_LIMITS]
    with running_stack(tmp_path_factory.mktemp("browser-three-regions"), options) as info:
        control = StackControl(playwright, info)
        try:
            for region in REGIONS:
                assert control.http.get(f"{info['regions'][region]['httpUrl']}/health").ok
            for region in REGIONS:
                control.wait_health(region, True)
        finally:
            control.close()
        yield info


def test_a_user_in_tokyo_is_served_in_tokyo_and_chats_with_virginia(open_page: OpenPage) -> None:
    # given Yuki in Tokyo and Ada in New York, in the same room
    yuki = open_page("Yuki", "tokyo")
    ada = open_page("Ada", "new-york")
    yuki.wait_connected("ap-northeast-1")
    ada.wait_connected("us-east-1")

    # when each sends a message
    yuki.send("Konnichiwa from Tokyo")
    ada.send("Hello from Virginia")

    # then both see both once, each accepted where it was sent and delivered by the reader's region
    texts = ["Konnichiwa from Tokyo", "Hello from Virginia"]
    for chat, own in ((yuki, "ap-northeast-1"), (ada, "us-east-1")):
        chat.wait_delivered(texts)
        assert_each_once(chat, texts)
        shown = chat.by_text()
        assert shown["Konnichiwa from Tokyo"]["accepted"] == "ap-northeast-1"
        assert shown["Hello from Virginia"]["accepted"] == "us-east-1"
        assert {shown[text]["delivered"] for text in texts} == {own}


def test_the_location_control_offers_every_regions_location_and_moves_the_user_there(
    open_page: OpenPage,
) -> None:
    # given Yuki in Tokyo
    yuki = open_page("Yuki", "tokyo")
    yuki.wait_connected("ap-northeast-1")
    control = yuki.page.get_by_label("Simulated location")
    labels = control.locator("option").all_text_contents()
    # then the control offers Tokyo's region among the choices, and names where each place goes
    assert "tokyo (ap-northeast-1)" in labels
    assert "london (eu-west-2)" in labels
    assert {"us-east-1", "eu-west-2", "ap-northeast-1"} <= set(labels)
    assert "sa-east-1" not in labels  # a region this stack does not run is no choice

    # when she picks London, then she reconnects to eu-west-2; back to Tokyo, to ap-northeast-1
    control.select_option("london")
    yuki.wait_connected("eu-west-2")
    control.select_option("tokyo")
    yuki.wait_connected("ap-northeast-1")
    yuki.send("back home")
    yuki.wait_delivered(["back home"])
    assert yuki.by_text()["back home"]["accepted"] == "ap-northeast-1"

"""Drive the chat page like a person would (keyboard and form controls) and read what it shows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import boto3

from stack_definition.routing import ROUTE53_REGION, nearest

# The regions next to these simulated client locations (the local stack's round-trip data).
NEAR_NEW_YORK, NEAR_LONDON = nearest("new-york"), nearest("london")

TIMEOUT_MS = 20_000  # generous for a slow CI machine; every wait ends as soon as its condition holds

# What the message list shows: one row per element, read straight from the DOM.
READ_MESSAGES = """() => [...document.querySelectorAll('#messages li.message')].map((li) => ({
  id: li.dataset.id,
  authorId: li.dataset.authorId,
  mine: li.classList.contains('mine'),
  state: li.dataset.state,
  author: li.querySelector('.author').textContent,
  tag: li.querySelector('.tag').textContent,
  kind: li.querySelector('.kind').textContent,
  text: li.querySelector('.text').textContent,
  accepted: li.querySelector('.accepted').textContent.replace('accepted: ', ''),
  delivered: li.querySelector('.delivered').textContent.replace('delivered: ', ''),
  transport: li.querySelector('.transport').textContent,
}))"""

# The member list: the count shown, and each member's name and user id, in the order shown.
READ_PRESENCE = """() => ({
  count: document.querySelector('#presence-count').textContent,
  names: [...document.querySelectorAll('#members li.member')].map((li) => li.textContent),
  ids: [...document.querySelectorAll('#members li.member')].map((li) => li.dataset.userId),
  mine: [...document.querySelectorAll('#members li.member.mine')].map((li) => li.dataset.userId),
})"""

SHOWS_PRESENCE = """([count, names]) => {
  const shown = [...document.querySelectorAll('#members li.member')].map((li) => li.textContent);
  return document.querySelector('#presence-count').textContent === String(count)
    && JSON.stringify(shown) === JSON.stringify(names);
}"""

CONNECTED_TO = """(region) => document.querySelector('#connection').dataset.state === 'connected'
  && document.querySelector('#region').dataset.region === region"""

# True once every text is shown, delivered, in exactly one element.
ALL_DELIVERED_ONCE = """(texts) => {
  const rows = [...document.querySelectorAll('#messages li.message')];
  return texts.every((text) => {
    const same = rows.filter((li) => li.querySelector('.text').textContent === text);
    return same.length === 1 && same[0].dataset.state === 'delivered';
  });
}"""


class ChatPage:
    def __init__(self, page: Any, author: str) -> None:
        self.page = page
        self.author = author

    @classmethod
    def open(
        cls,
        browser: Any,
        base_url: str,
        *,
        author: str,
        room: str,
        location: str,
        before_load: Callable[[Any], None] | None = None,
    ) -> ChatPage:
        """A new browser profile (its own cookies) whose simulated location is `location`."""
        context = browser.new_context(base_url=base_url, viewport={"width": 900, "height": 760})
        context.add_cookies([{"name": "rc-location", "value": location, "url": base_url}])
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        if before_load:
            before_load(page)
        page.goto("/")
        page.wait_for_selector("body[data-ready=true]")
        page.get_by_role("textbox", name="Your name").fill(author)
        room_box = page.get_by_role("textbox", name="Room")
        room_box.fill(room)
        room_box.press("Enter")
        page.wait_for_selector("#chat:not([hidden])")
        return cls(page, author)

    def reload_and_join(self) -> None:
        """Reload the page and press Join again (the form remembers the name and the room)."""
        self.page.reload()
        self.page.wait_for_selector("body[data-ready=true]")
        self.page.get_by_role("button", name="Join").click()
        self.page.wait_for_selector("#chat:not([hidden])")

    @property
    def user_id(self) -> str:
        """The user id the page is signed in as."""
        return str(self.page.get_attribute("#me", "data-user-id"))

    @property
    def shown_as(self) -> tuple[str, str, str]:
        """The name, tag and kind the page shows for its own user."""
        shown: list[str] = self.page.evaluate(
            "() => ['#me', '#me-who .tag', '#me-who .kind'].map((s) => document.querySelector(s).textContent)"
        )
        return shown[0], shown[1], shown[2]

    def stored_session(self) -> dict[str, Any]:
        session: dict[str, Any] = self.page.evaluate("() => JSON.parse(localStorage.getItem('rc-session'))")
        return session

    def store_session(self, session: dict[str, Any]) -> None:
        self.page.evaluate("(s) => localStorage.setItem('rc-session', JSON.stringify(s))", session)

    def wait_connected(self, region: str, timeout: float | None = None) -> None:
        try:
            self.page.wait_for_function(CONNECTED_TO, arg=region, timeout=timeout)
        except Exception as error:  # playwright's TimeoutError: say what the page showed instead
            state = self.page.evaluate("() => document.querySelector('#connection').dataset.state")
            log = "\n  ".join(text for _, text in self.log_entries()[-15:])
            raise AssertionError(
                f"{self.author} not connected to {region}: the page is {state!r} to {self.region!r};"
                f" its log, newest last:\n  {log}"
            ) from error

    @property
    def region(self) -> str:
        return str(self.page.get_attribute("#region", "data-region"))

    def send(self, text: str) -> None:
        box = self.page.get_by_role("textbox", name="Message")
        box.fill(text)
        box.press("Enter")

    def wait_delivered(self, texts: list[str], timeout: float | None = None) -> None:
        self.page.wait_for_function(ALL_DELIVERED_ONCE, arg=texts, timeout=timeout)

    def messages(self) -> list[dict[str, str]]:
        rows: list[dict[str, str]] = self.page.evaluate(READ_MESSAGES)
        return rows

    def by_text(self) -> dict[str, dict[str, str]]:
        return {row["text"]: row for row in self.messages()}

    def presence(self) -> dict[str, Any]:
        """What the member list shows: {count, names, ids, mine (the ids marked as this user's)}."""
        shown: dict[str, Any] = self.page.evaluate(READ_PRESENCE)
        return shown

    def wait_presence(self, count: int, names: list[str], timeout: float | None = None) -> None:
        """Until the list shows exactly `names`, in that order, and the count `count`."""
        self.page.wait_for_function(SHOWS_PRESENCE, arg=[count, names], timeout=timeout)

    @property
    def typing_line(self) -> str:
        """Who the page says is typing ("" for nobody)."""
        return str(self.page.text_content("#typing"))

    def wait_typing(self, text: str, timeout: float | None = None) -> None:
        self.page.wait_for_function(
            "(text) => document.querySelector('#typing').textContent === text", arg=text, timeout=timeout
        )

    def open_tab(self) -> ChatPage:
        """A second tab of this browser profile: the same session, so the same user; joins the room."""
        page = self.page.context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto("/")
        page.wait_for_selector("body[data-ready=true]")
        page.get_by_role("button", name="Join").click()
        page.wait_for_selector("#chat:not([hidden])")
        return ChatPage(page, self.author)

    def log(self) -> str:
        return str(self.page.inner_text("#log"))

    def log_entries(self) -> list[tuple[datetime, str]]:
        """The connection log, oldest first: when the page wrote each line, and the line."""
        rows: list[list[str]] = self.page.evaluate(
            """() => [...document.querySelectorAll('#log li')].reverse().map((li) => {
              const time = li.querySelector('time');
              return [time.dateTime, li.textContent.slice(time.textContent.length + 1)];
            })"""
        )
        return [(datetime.fromisoformat(when.replace("Z", "+00:00")), text) for when, text in rows]

    def wait_logged(self, text: str, timeout: float | None = None) -> None:
        self.page.wait_for_function(
            "(text) => document.querySelector('#log').innerText.includes(text)", arg=text, timeout=timeout
        )

    def close(self) -> None:
        self.page.context.close()


def assert_each_once(chat: ChatPage, texts: list[str]) -> None:
    """Every expected message is shown, in exactly one element per id, and no id is shown twice."""
    rows = chat.messages()
    ids = [row["id"] for row in rows]
    assert len(ids) == len(set(ids)), f"{chat.author} shows an id twice: {ids}"
    for text in texts:
        same = [row for row in rows if row["text"] == text]
        assert len(same) == 1, f"{chat.author} shows {text!r} {len(same)} times"
        assert same[0]["state"] == "delivered"


class StackControl:
    """The local stack's controls: stop/start a region, fail/heal its DynamoDB or Lambda, invert
    its Route 53 health check."""

    def __init__(self, playwright: Any, stack: dict[str, Any]) -> None:
        self.stack = stack
        self.http = playwright.request.new_context(base_url=stack["frontDoorUrl"], timeout=TIMEOUT_MS)
        self.route53 = boto3.client(
            "route53",
            endpoint_url=stack["awsEndpointUrl"],
            region_name=ROUTE53_REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def region_process(self, region: str, action: str) -> None:
        response = self.http.post(f"/_local/regions/{region}", data={"action": action})
        assert response.ok, response.text()

    def fail(self, region: str, service: str) -> None:
        """`service` ("dynamodb" or "lambda") fails in `region`; its APIs keep answering."""
        response = self.http.post(f"/_local/regions/{region}", data={"action": "fail", "service": service})
        assert response.ok, response.text()
        assert service in response.json()["faults"]

    def heal(self, region: str) -> None:
        response = self.http.post(f"/_local/regions/{region}", data={"action": "heal"})
        assert response.ok, response.text()
        assert response.json()["faults"] == []

    def invert(self, region: str, inverted: bool) -> None:
        check = self.stack["regions"][region]["healthCheckId"]
        self.route53.update_health_check(HealthCheckId=check, Inverted=inverted)

    def wait_health(self, region: str, healthy: bool) -> None:
        """Long-poll the front door's events until it routes as if `region` were (un)healthy."""
        after = 0
        for _ in range(100):
            page = self.http.get(f"/_frontdoor/events?after={after}&wait=5").json()
            if page["regions"][region] == healthy:
                return
            after = page["last"]
        raise AssertionError(f"{region} never became {'healthy' if healthy else 'unhealthy'}")

    def restore(self) -> None:
        """Both regions running and healed, no check inverted, both healthy again."""
        for region in self.stack["regions"]:
            self.region_process(region, "start")
            self.heal(region)
            self.invert(region, False)
        for region in self.stack["regions"]:
            self.wait_health(region, True)

    def close(self) -> None:
        self.http.dispose()

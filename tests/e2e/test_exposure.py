"""What the running local stack exposes: loopback only, CORS only for the chat page's origin."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any
from urllib.parse import urlparse

import aiohttp
import pytest

from tests.e2e.chat import NEAR_LONDON, sign_in

pytestmark = pytest.mark.e2e


def all_urls(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [url for item in value.values() for url in all_urls(item)]
    return [value] if isinstance(value, str) and "://" in value else []


def test_every_endpoint_of_the_stack_is_on_loopback(stack: dict[str, Any]) -> None:
    urls = all_urls(stack)
    assert len(urls) >= 9
    for url in urls:
        assert ipaddress.ip_address(urlparse(url).hostname or "").is_loopback, url


@pytest.mark.parametrize(("origin", "allowed"), [("FRONT_DOOR", True), ("https://evil.example", False)])
def test_region_apis_answer_cors_only_for_the_chat_pages_origin(
    stack: dict[str, Any], origin: str, allowed: bool
) -> None:
    origin = stack["frontDoorUrl"] if origin == "FRONT_DOOR" else origin

    async def scenario() -> None:
        url = f"{stack['regions'][NEAR_LONDON]['httpUrl']}/rooms/lobby/messages"
        headers = {
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization",
        }
        reader = await sign_in(stack["frontDoorUrl"], "reader")
        async with aiohttp.ClientSession() as session:
            async with session.options(url, headers=headers) as preflight:
                assert preflight.headers.get("Access-Control-Allow-Origin") == (origin if allowed else None)
                if allowed:
                    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].split(",")
            # the page reads its answers, a 401 (to sign in again) and a 429's Retry-After included
            for credentials, status in ((reader.headers, 200), ({}, 401)):
                async with session.get(url, headers={"Origin": origin, **credentials}) as response:
                    cors = response.headers
                    assert response.status == status
                    assert cors.get("Access-Control-Allow-Origin") == (origin if allowed else None)
                    assert cors.get("Access-Control-Expose-Headers") == ("retry-after" if allowed else None)

    asyncio.run(scenario())


async def region_running(stack: dict[str, Any], region: str) -> bool:
    async with aiohttp.ClientSession() as session:
        async with session.get(stack["statusUrl"]) as response:
            processes: dict[str, bool] = (await response.json())["processes"]
        async with session.get(f"{stack['regions'][region]['httpUrl']}/health") as health:
            return processes[region] and health.status == 200


@pytest.mark.parametrize(
    ("content_type", "origin"),
    [
        ("text/plain", "https://evil.example"),  # a "simple" request: no preflight in any browser
        ("text/plain", None),
        ("application/x-www-form-urlencoded", None),
        ("application/json", "https://evil.example"),
        ("application/json", "null"),  # a sandboxed frame or a file:// page
    ],
)
def test_a_control_request_a_web_page_could_send_is_refused_and_changes_nothing(
    stack: dict[str, Any], content_type: str, origin: str | None
) -> None:
    async def scenario() -> None:
        headers = {"Content-Type": content_type} | ({"Origin": origin} if origin else {})
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{stack['frontDoorUrl']}/_local/regions/{NEAR_LONDON}",
                data='{"action":"stop"}',
                headers=headers,
            ) as response,
        ):
            assert response.status == 403
            body = await response.json()
            assert body["error"]["code"] == "forbidden"
            assert "Access-Control-Allow-Origin" not in response.headers
        assert await region_running(stack, NEAR_LONDON)

    asyncio.run(scenario())


def test_the_aws_endpoint_allows_no_other_origin(stack: dict[str, Any]) -> None:
    async def scenario() -> None:
        headers = {
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,x-amz-target",
        }
        async with (
            aiohttp.ClientSession() as session,
            session.options(f"{stack['awsEndpointUrl']}/", headers=headers) as preflight,
        ):
            allowed = preflight.headers.get("Access-Control-Allow-Origin")
            assert allowed not in ("https://evil.example", "*"), dict(preflight.headers)

    asyncio.run(scenario())

"""What the running local stack exposes: loopback only, CORS only for the chat page's origin."""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any
from urllib.parse import urlparse

import aiohttp
import pytest

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
        url = f"{stack['regions']['eu-west-2']['httpUrl']}/rooms/lobby/messages"
        headers = {
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        }
        async with aiohttp.ClientSession() as session:
            async with session.options(url, headers=headers) as preflight:
                assert preflight.headers.get("Access-Control-Allow-Origin") == (origin if allowed else None)
            async with session.get(url, headers={"Origin": origin}) as response:
                assert response.status == 200
                assert response.headers.get("Access-Control-Allow-Origin") == (origin if allowed else None)

    asyncio.run(scenario())

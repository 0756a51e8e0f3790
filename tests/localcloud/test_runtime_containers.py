"""A Lambda container runs one invocation at a time, and powertools' resolvers rely on it: the
invocation's event lives on the module-level resolver. The local runtime runs a region's functions
on threads of one process, so it must not let two invocations of such a function overlap."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from localcloud.events import http_event
from localcloud.runtime import LambdaRuntime
from localcloud.template import load


def request(path: str) -> dict[str, Any]:
    return http_event(
        api_id="api",
        domain="127.0.0.1",
        method="GET",
        path=path,
        raw_query="",
        query_pairs=[],
        headers=[],
        route_key=f"GET {path}",
        path_parameters={},
        body=b"",
        source_ip="127.0.0.1",
    )


def test_concurrent_invocations_of_a_resolver_function_each_answer_their_own_request() -> None:
    template = load()
    function = next(iter(template.functions.values()))
    template.functions = {"Resolver": replace(function, handler="tests.localcloud.resolver_function.handler")}
    runtime = LambdaRuntime(template, "us-east-1", {}, asyncio.Event())
    paths = [f"/slow/{n}" if n % 2 else "/fast" for n in range(20)]

    async def scenario() -> list[Any]:
        return await asyncio.gather(*(runtime.invoke("Resolver", request(path)) for path in paths))

    answers = asyncio.run(scenario())
    assert [answer["statusCode"] for answer in answers] == [200] * len(paths)
    assert [answer["body"] for answer in answers] == [
        f'{{"name":"{path[6:]}","path":"{path}"}}' if path != "/fast" else f'{{"path":"{path}"}}'
        for path in paths
    ]

"""A Lambda container runs one invocation at a time, and powertools' resolvers rely on it: the
invocation's event lives on the module-level resolver. The local runtime runs a region's functions
on threads of one process, so it gives such a function containers of its own (its module loaded
again), one invocation at a time each, and more when they are busy, as Lambda does."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from localcloud.apigateway.events import http_event
from localcloud.lambda_.runtime import LambdaRuntime
from stack_definition.template import load


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


def test_a_resolver_function_serves_two_requests_at_once_in_two_containers() -> None:
    # given a function whose module holds its invocation
    template = load()
    function = next(iter(template.functions.values()))
    template.functions = {"Resolver": replace(function, handler="tests.localcloud.resolver_function.handler")}
    runtime = LambdaRuntime(template, "us-east-1", {}, asyncio.Event())

    # when two requests that each answer only while the other is running arrive together
    async def scenario() -> list[Any]:
        return await asyncio.gather(*(runtime.invoke("Resolver", request("/together")) for _ in range(2)))

    # then both are answered (one at a time, neither would be), each with its own request
    answers = asyncio.run(scenario())
    assert [answer["body"] for answer in answers] == ['{"path":"/together"}'] * 2

"""A management-API double: `POST /{stage}/@connections/{id}` answers 200 after an injected delay
(AWS's PostToConnection takes roughly 20 ms). Run by bench.common.slow_endpoint in a subprocess."""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web


async def serve(delay: float) -> None:
    async def post(request: web.Request) -> web.Response:
        await request.read()
        if delay:
            await asyncio.sleep(delay)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", post)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(f"PORT {port}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--delay", type=float, default=0.0)
    asyncio.run(serve(parser.parse_args().delay))


if __name__ == "__main__":
    main()

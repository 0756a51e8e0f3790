"""One region of the local stack, in its own process with that region's environment: its tables
and queues, its Lambda functions, its HTTP API, its WebSocket API (with `@connections`) and the
event source mappings (from its messages stream to the fan-out function, from the fan-out's page
queue to its worker) and the functions' schedules, built from template.yaml.

Run by the supervisor: `python -m localcloud.stack.region_process --region <region> ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path

from aiohttp import web

from localcloud import processes
from localcloud.apigateway.http_api import HttpApi
from localcloud.apigateway.websocket_api import WebSocketApi
from localcloud.aws import call_counter, faults, provision
from localcloud.dynamodb.streams import StreamSource
from localcloud.lambda_.event_source_mapping import EventSourceMapping
from localcloud.lambda_.queue_mapping import QueueEventSourceMapping, QueueSource
from localcloud.lambda_.runtime import LambdaRuntime, region_environment
from localcloud.lambda_.schedule import ScheduledRule
from stack_definition.state import StateDir
from stack_definition.template import load

log = logging.getLogger("region")


def _rss_bytes() -> int:
    """This process's resident memory (Linux), for the soak test."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


async def serve(args: argparse.Namespace) -> None:
    region, host, aws_endpoint = args.region, args.host, args.aws_endpoint
    template = load()
    tables = provision.create_tables(template, aws_endpoint, region)
    queues = provision.create_queues(template, aws_endpoint, region)
    # What CloudFormation made stays made; a region started again comes back as failing as it was.
    faults.set_failing(args.faults)
    apis = template.api_ids(region)
    parameters = {
        **dict(p.split("=", 1) for p in args.parameter_overrides),
        "AllowedOrigin": args.allowed_origin or "",
    }
    ctx = template.context(region, parameters, apis)
    # The ports first: the functions' environment carries the @connections URL. A restarted
    # region comes back on the same ports, as an API keeps its hostname.
    http_socket, ws_socket = processes.bind(host, args.http_port), processes.bind(host, args.ws_port)
    ws_port = ws_socket.getsockname()[1]
    invoked = asyncio.Event()
    environment = region_environment(
        template,
        region,
        parameters=parameters,
        refs={"ConnectionsTable": tables["connections"]} | {name: q.url for name, q in queues.items()},
        aws_endpoint=aws_endpoint,
        local_urls={template.websocket_api: f"http://{host}:{ws_port}"},
    )
    runtime = LambdaRuntime(template, region, environment, invoked)
    cors = ctx.resolve(template.http_cors)
    http_api = HttpApi(template, runtime, api_id=apis[template.http_api], cors=cors)
    websocket_api = WebSocketApi(
        template,
        runtime,
        region=region,
        api_id=apis[template.websocket_api],
        domain=f"{host}:{ws_port}",
        # Its name and route settings; the access log's destination is a CloudWatch log group
        # (the region's log has a line per connection and event instead).
        stage=ctx.resolve({k: v for k, v in template.websocket_stage.items() if k != "AccessLogSettings"}),
    )
    ws_app = web.Application()
    ws_app.router.add_get("/_local/stats", lambda _: _stats(websocket_api))
    ws_app.router.add_route("*", "/_local/faults", faults.handle)  # the supervisor's fail/heal
    if call_counter.ENABLED:
        ws_app.router.add_route("*", "/_local/aws-calls", call_counter.handle)
    websocket_api.add_routes(ws_app)
    await processes.serve(http_api.app(), http_socket)
    await processes.serve(ws_app, ws_socket)
    streams = provision.client("dynamodbstreams", aws_endpoint, region)
    mapping = EventSourceMapping(
        template.stream,
        lambda: StreamSource(
            streams,
            tables["stream"],
            region=region,
            starting_position=template.stream.starting_position,
            checkpoint_file=StateDir(Path(args.state_dir)).checkpoint(f"{region}.stream"),
        ),
        runtime.invoke,
        wake=invoked,
        poll_interval=args.poll_interval,
    )
    sqs = provision.client("sqs", aws_endpoint, region)
    queue_mappings = [
        QueueEventSourceMapping(
            settings,
            QueueSource(sqs, queues[settings.queue].url, queues[settings.queue].arn, region),
            runtime.invoke,
            poll_interval=args.poll_interval,
            visibility_timeout=template.queues[settings.queue].visibility_timeout,
        )
        for settings in template.queue_mappings
    ]
    call_counter.count_apart(settings.function for settings in template.schedules)
    rules = [
        ScheduledRule(
            settings, runtime.invoke, region=region, account=ctx.account_id, stack_name=template.stack_name
        )
        for settings in template.schedules
    ]
    ready = {
        "region": region,
        "http": http_socket.getsockname()[1],
        "ws": ws_port,
        "stage": websocket_api.stage,
    }
    log.info("ready %s", ready)
    processes.announce_ready(args.ready_fd, ready)
    polling = [
        asyncio.create_task(mapping.run()),
        *(asyncio.create_task(m.run()) for m in queue_mappings),
        *(asyncio.create_task(rule.run()) for rule in rules),
    ]
    await processes.parent_gone()
    log.warning("the stack supervisor is gone: stopping")
    for task in polling:
        task.cancel()
    os._exit(0)


async def _stats(websocket_api: WebSocketApi) -> web.Response:
    """For the soak test: what this region holds now."""
    return web.json_response({"connections": len(websocket_api.connections), "rssBytes": _rss_bytes()})


def main(argv: list[str] | None = None) -> None:
    parser = processes.child_arguments(__doc__.split("\n")[0])
    parser.add_argument("--region", required=True)
    parser.add_argument("--aws-endpoint", required=True)
    parser.add_argument("--http-port", type=int, default=0)
    parser.add_argument("--ws-port", type=int, default=0)
    parser.add_argument("--state-dir", default=".local")
    parser.add_argument("--poll-interval", type=float, default=0.1)
    parser.add_argument("--allowed-origin", default=None)
    parser.add_argument("--parameter-overrides", nargs="*", default=[], metavar="NAME=VALUE")
    parser.add_argument("--faults", nargs="*", default=[], choices=faults.SERVICES)
    args = parser.parse_args(argv)
    call_counter.install()
    faults.install()  # before any client: each copies the default session's handlers
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stdout,
        format=f"%(asctime)s {args.region} %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()

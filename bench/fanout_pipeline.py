"""The fan-out benchmark's handler layer: one region's fan-out through the real handlers, in this
process: the local Lambda runtime and SQS queue mapping (localcloud's own, measured here in
process), moto for the connections table and the page queue, and a 20 ms management-API double
for the posts (bench/fanout.py runs it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from bench.common import slow_endpoint
from bench.fanout_domain import POST_SECONDS, fanout_region
from stack_definition.template import load_cached


class Pipeline:
    """One region's fan-out as the local stack runs it: the template's functions in the local
    Lambda runtime, the stream handler invoked with a batch, and the template's page-queue mapping
    (localcloud.lambda_.queue_mapping: five concurrent invocations at first, growing to MaximumConcurrency)
    invoking the real worker with the pages moto's SQS holds. Posts go to a 20 ms double.

    Every invocation here is a thread of this one process, where in AWS each has a container and
    its CPU: `deliver` measures both end to end as this machine runs them (`solo=False`) and each
    invocation alone (`solo=True`: the workers one at a time, after the stream handler), from
    which `projected_seconds` gives the end to end that separate containers would take."""

    def __init__(self, runtime: Any, template: Any, queue: Any, sqs: Any, calls: Counter[str]) -> None:
        self._runtime = runtime
        self._queue = queue
        self._sqs = sqs
        (self.settings,) = template.queue_mappings
        self.calls = calls
        self.durations: dict[str, list[float]] = {}
        self.started: dict[str, list[float]] = {}
        self.running = Counter[str]()
        self.peak = Counter[str]()
        self.page_posts: list[int] = []
        self.page_bytes = 0
        self.posted: list[tuple[str, float]] = []  # (connection id, when its post returned)
        self.lock = threading.Lock()
        self.expected = 0
        self.all_posted = threading.Event()
        self.query_seconds = 0.0  # moto's time answering the room-index queries

    def on_post(self, connection_id: str) -> None:
        with self.lock:
            self.posted.append((connection_id, time.perf_counter()))
            if len(self.posted) >= self.expected:
                self.all_posted.set()

    async def invoke(self, function_id: str, event: dict[str, Any]) -> Any:
        from chat.fanout_pages import Page

        if function_id == "FanoutWorkerFunction":
            self.page_posts += [Page.decode(r["body"]).posts for r in event["Records"]]
            self.page_bytes += sum(len(r["body"].encode()) for r in event["Records"])
        self.running[function_id] += 1
        self.peak[function_id] = max(self.peak[function_id], self.running[function_id])
        started = time.perf_counter()
        self.started.setdefault(function_id, []).append(started)
        try:
            return await self._runtime.invoke(function_id, event)
        finally:
            self.durations.setdefault(function_id, []).append(time.perf_counter() - started)
            self.running[function_id] -= 1

    def _reset(self, posts: int) -> None:
        for kept in (self.durations, self.started, self.peak):
            kept.clear()
        self.page_posts.clear()
        self.page_bytes = 0
        self.posted.clear()
        self.calls.clear()
        self.expected = posts
        self.all_posted.clear()
        self.query_seconds = 0.0

    async def deliver(self, batch: dict[str, Any], posts: int, *, solo: bool = False) -> dict[str, Any]:
        """Invoke the stream handler with `batch`; return once `posts` posts are made and every
        worker invocation has returned."""
        from localcloud.lambda_.queue_mapping import QueueEventSourceMapping

        self._reset(posts)
        settings = replace(self.settings, max_concurrency=1) if solo else self.settings
        mapping = QueueEventSourceMapping(settings, self._queue, self.invoke, poll_interval=0.01)
        concurrent = None if solo else asyncio.create_task(mapping.run())
        started = time.perf_counter()
        response = await self.invoke("FanoutFunction", batch)
        assert response == {"batchItemFailures": []}, response
        polling = concurrent or asyncio.create_task(mapping.run())  # solo: the workers start now
        assert await asyncio.to_thread(self.all_posted.wait, 900), f"{len(self.posted)} of {posts} posts"
        mapping.stop()
        await polling
        while mapping.in_flight:
            await asyncio.gather(*mapping.in_flight)
        stream = self.durations["FanoutFunction"][0]
        workers = self.durations.get("FanoutWorkerFunction", [])
        first_worker = min(self.started.get("FanoutWorkerFunction", [started + stream]))
        return {
            "seconds": max(t for _, t in self.posted) - started,
            "posted": list(self.posted),
            "started": started,
            "streamHandlerSeconds": round(stream, 4),
            "querySeconds": round(self.query_seconds, 4),
            # Solo: from the stream handler's return to the first worker's start (the queue's hop).
            "hopSeconds": round(max(0.0, first_worker - started - stream), 4),
            "workerInvocations": len(workers),
            "workerSeconds": [round(w, 4) for w in workers],
            "workerSecondsMax": round(max(workers, default=0.0), 4),
            "workerSecondsTotal": round(sum(workers), 4),
            "peakConcurrentWorkers": self.peak["FanoutWorkerFunction"],
            # The stream handler posts what it does not queue (at most one page: its inline budget).
            "maxPostsPerInvocation": max([posts - sum(self.page_posts), *self.page_posts]),
            "pagesQueued": len(self.page_posts),
            "pageBytes": self.page_bytes,
            "calls": dict(self.calls),
        }

    async def queue_only(self, batch: dict[str, Any], sample: int) -> dict[str, Any]:
        """Invoke the stream handler with `batch`, then `sample` of its pages' workers one at a
        time; the rest of the pages are purged (every page has at most the same posts)."""
        self._reset(0)
        response = await self.invoke("FanoutFunction", batch)
        assert response == {"batchItemFailures": []}, response
        attributes = await asyncio.to_thread(
            self._sqs.get_queue_attributes,
            QueueUrl=self._queue.url,
            AttributeNames=["ApproximateNumberOfMessages"],
        )
        pages = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
        for record in (await asyncio.to_thread(self._queue.receive, sample, 0))[:sample]:
            assert await self.invoke("FanoutWorkerFunction", {"Records": [record]}) == {
                "batchItemFailures": []
            }
        await asyncio.to_thread(self._sqs.purge_queue, QueueUrl=self._queue.url)
        return {
            "streamHandlerSeconds": round(self.durations["FanoutFunction"][0], 4),
            "querySeconds": round(self.query_seconds, 4),
            "pagesQueued": pages,
            "workerSeconds": [round(w, 4) for w in self.durations["FanoutWorkerFunction"]],
            "maxPostsPerInvocation": max(self.page_posts),
        }


def projected_seconds(pages: int, page_seconds: float, maximum: int) -> tuple[float, int]:
    """When the last of `pages` pages of `page_seconds` each is done, and the most running at once,
    if each invocation had its own CPU, under Lambda's documented scaling of an SQS mapping: five
    at once, 300 more a minute (checked as pages finish), at most `maximum`."""
    from localcloud.lambda_.queue_mapping import INITIAL_CONCURRENCY, SCALE_UP_PER_SECOND

    now, left, peak = 0.0, pages, 0
    running: list[float] = []  # finish times
    while left or running:
        allowed = min(maximum, INITIAL_CONCURRENCY + int(SCALE_UP_PER_SECOND * now))
        while left and len(running) < allowed:
            running.append(now + page_seconds)
            left -= 1
        peak = max(peak, len(running))
        now = min(running)
        running.remove(now)
    return now, peak


@contextlib.contextmanager
def pipeline_in_moto() -> Iterator[tuple[Pipeline, Any, str]]:
    """A moto server with the template's tables and queues, a 20 ms management-API double, and
    the Pipeline over them; yields it with a DynamoDB client and the connections table's name."""
    import boto3
    from moto.server import ThreadedMotoServer

    from chat import composition
    from chat.push import ManagementApiPusher
    from localcloud.aws import provision
    from localcloud.lambda_.queue_mapping import QueueSource
    from localcloud.lambda_.runtime import LambdaRuntime, region_environment

    calls: Counter[str] = Counter()
    calls_lock = threading.Lock()

    def count(model: Any, **_: Any) -> None:
        with calls_lock:
            calls[model.name] += 1

    query_started = threading.local()

    def query_sent(**_: Any) -> None:
        query_started.at = time.perf_counter()

    def query_answered(**_: Any) -> None:
        assert pipeline is not None
        with calls_lock:
            pipeline.query_seconds += time.perf_counter() - query_started.at

    real_push = ManagementApiPusher.push
    pipeline: Pipeline | None = None

    def counted_push(self: ManagementApiPusher, connection_id: str, data: bytes) -> Any:
        # The pusher signs and sends its posts itself (not through boto3): count them here.
        outcome = real_push(self, connection_id, data)
        with calls_lock:
            calls["PostToConnection"] += 1
        assert pipeline is not None
        pipeline.on_post(connection_id)
        return outcome

    from chat.observability import logger

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto: one line per call
    logging.getLogger("event-source-mapping").setLevel(logging.WARNING)
    level = logger.log_level
    logger.setLevel("WARNING")  # one INFO line per invocation would drown the summary
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    saved_env = dict(os.environ)
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        chat_template = load_cached()
        # Invocations share this process's CPU here (and the machine with the rest of the bench):
        # the runtime gets no timeouts, and the durations are reported against the template's.
        chat_template = replace(
            chat_template,
            functions={k: replace(f, timeout=900.0) for k, f in chat_template.functions.items()},
        )
        tables = provision.create_tables(chat_template, endpoint, fanout_region())
        queues = provision.create_queues(chat_template, endpoint, fanout_region())
        with slow_endpoint(POST_SECONDS) as management_url:
            environment = region_environment(
                chat_template,
                fanout_region(),
                refs={"ConnectionsTable": tables["connections"]} | {n: q.url for n, q in queues.items()},
                aws_endpoint=endpoint,
                local_urls={"WebSocketApi": management_url.removesuffix("/prod")},
            )
            environment |= {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
            boto3.setup_default_session()
            assert boto3.DEFAULT_SESSION is not None
            boto3.DEFAULT_SESSION.events.register("before-call", count)
            boto3.DEFAULT_SESSION.events.register("before-call.dynamodb.Query", query_sent)
            boto3.DEFAULT_SESSION.events.register("after-call.dynamodb.Query", query_answered)
            ManagementApiPusher.push = counted_push  # type: ignore[method-assign]
            runtime = LambdaRuntime(chat_template, fanout_region(), environment, asyncio.Event())
            page = queues["FanoutPageQueue"]
            source = QueueSource(
                provision.client("sqs", endpoint, fanout_region()), page.url, page.arn, fanout_region()
            )
            pipeline = Pipeline(
                runtime, chat_template, source, provision.client("sqs", endpoint, fanout_region()), calls
            )
            yield pipeline, provision.client("dynamodb", endpoint, fanout_region()), tables["connections"]
    finally:
        ManagementApiPusher.push = real_push  # type: ignore[method-assign]
        os.environ.clear()
        os.environ.update(saved_env)
        composition.reset()
        boto3.DEFAULT_SESSION = None
        server.stop()
        logger.setLevel(level)

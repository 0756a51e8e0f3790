"""Lambda's event source mapping: it polls a source, gathers batches (BatchSize, within
MaximumBatchingWindowInSeconds), drops what the filter patterns reject, invokes the function,
and moves its checkpoint past a batch only once the batch is done: a failing batch is bisected
(BisectBatchOnFunctionError), retried from its failed records (ReportBatchItemFailures) with
backoff, and given up after MaximumRetryAttempts. A throttled invocation (the function never ran)
is retried with backoff until its records are older than MaximumRecordAgeInSeconds, as Lambda
documents: no attempt is counted and no batch is split, so a region whose Lambda is throttled
delivers its whole backlog, in order, once it is not. A source that cannot be read is retried from
the checkpoint for as long as it takes.

Generic over its source: a DynamoDB stream today (`dynamodb.streams.StreamSource`); a queue is another
Source with its own retry rule."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from localcloud.lambda_.runtime import TooManyRequestsException
from stack_definition.event_sources import StreamMapping

log = logging.getLogger("event-source-mapping")

Record = dict[str, Any]
Invoke = Callable[[str, dict[str, Any]], Awaitable[Any]]


class Readable(Protocol):
    def read(self, limit: int) -> list[Record]: ...

    def resume(self) -> None:
        """After a failed read: read again just after the checkpoint."""


class Source(Readable, Protocol):
    arn: str

    def commit(self, record: Record) -> None:
        """This record and every one before it are done."""

    def to_retry(self, batch: list[Record], failed: list[str]) -> list[Record]:
        """What to invoke again when the function reports these item identifiers as failed."""


R = TypeVar("R", bound=Readable)


async def read_with_retries(
    open_source: Callable[[], R],
    limit: int,
    source: R | None = None,
    *,
    first_delay: float = 0.1,
    max_delay: float = 5.0,
) -> tuple[R, list[Record]]:
    """The next records: a failed call to the source (the endpoint unreachable, throttled, an
    expired iterator) is retried with exponential backoff from the checkpoint, for as long as it
    takes; it never ends the mapping."""
    delay = 0.0
    while True:
        try:
            if source is None:
                source = await asyncio.to_thread(open_source)
            elif delay:
                await asyncio.to_thread(source.resume)
            records = await asyncio.to_thread(source.read, limit)
        except (BotoCoreError, ClientError) as error:
            delay = min(max_delay, max(first_delay, delay * 2))
            log.warning("cannot read the source (%s); retrying in %.1f s", error, delay)
            await asyncio.sleep(delay)
            continue
        if delay:
            log.info("reading the source again")
        return source, records


def _matches(pattern: Any, value: Any) -> bool:
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(_matches(p, value.get(k)) for k, p in pattern.items())
    if isinstance(pattern, list):
        return value in pattern
    return bool(pattern == value)


def passes_filters(record: Record, patterns: list[str]) -> bool:
    """Lambda event filtering, for the equality patterns the template uses (no filters: all pass)."""
    return not patterns or any(_matches(json.loads(p), record) for p in patterns)


class EventSourceMapping:
    def __init__(
        self,
        settings: StreamMapping,
        open_source: Callable[[], Source],
        invoke: Invoke,
        *,
        wake: asyncio.Event,
        poll_interval: float,
    ) -> None:
        self.settings = settings
        self._open_source = open_source
        self._invoke = invoke
        self._wake = wake  # set when something may have been written: read now, not at the next poll
        self._poll_interval = poll_interval

    async def run(self) -> None:
        source: Source | None = None
        while True:
            source, records = await self._next_batch(source)
            if not records:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=self._poll_interval)
                self._wake.clear()
                continue
            batch = [r for r in records if passes_filters(r, self.settings.filters)]
            if batch:
                await self.deliver(source, batch)
            await asyncio.to_thread(source.commit, records[-1])

    async def _next_batch(self, source: Source | None) -> tuple[Source, list[Record]]:
        """Up to BatchSize records; with a batching window, what arrives within it after the first."""
        size = self.settings.batch_size
        source, records = await read_with_retries(self._open_source, size, source)
        deadline = time.monotonic() + self.settings.batching_window
        while records and len(records) < size and (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(min(left, self._poll_interval))
            source, more = await read_with_retries(self._open_source, size - len(records), source)
            records += more
        return source, records

    async def deliver(self, source: Source, batch: list[Record], attempt: int = 0) -> None:
        settings = self.settings
        throttled = 0
        while True:
            batch = self._young_enough(batch)
            if not batch:
                return
            try:
                result = await self._invoke(settings.function, {"Records": batch})
            except TooManyRequestsException as error:
                throttled += 1
                if throttled == 1:
                    log.warning("%s; retrying the batch of %d until it is not", error, len(batch))
                await asyncio.sleep(min(0.05 * 2**throttled, 2.0))
                continue
            except Exception:
                log.exception("%s failed on a batch of %d", settings.function, len(batch))
                if settings.bisect_on_error and len(batch) > 1:
                    half = len(batch) // 2
                    await self.deliver(source, batch[:half], attempt + 1)
                    await self.deliver(source, batch[half:], attempt + 1)
                    return
                retry = batch
            else:
                failures = (
                    (result or {}).get("batchItemFailures") or []
                    if settings.report_batch_item_failures
                    else []
                )
                if not failures:
                    return
                retry = source.to_retry(batch, [f["itemIdentifier"] for f in failures])
            attempt += 1
            if 0 <= settings.max_retries < attempt:
                log.error("discarding %d records after %d attempts", len(batch), attempt)
                return
            batch = retry
            await asyncio.sleep(min(0.05 * 2**attempt, 2.0))  # the mapping's retry backoff

    def _young_enough(self, batch: list[Record]) -> list[Record]:
        """The records not older than MaximumRecordAgeInSeconds (the others are discarded)."""
        limit = self.settings.max_record_age
        if limit < 0:
            return batch
        now = time.time()
        kept = [
            r for r in batch if now - r.get("dynamodb", {}).get("ApproximateCreationDateTime", now) <= limit
        ]
        if len(kept) < len(batch):
            log.error("discarding %d records older than %.0f s", len(batch) - len(kept), limit)
        return kept

"""Lambda's event source mapping for an Amazon SQS queue (moto serves the queue), as AWS documents it:

- pollers long-poll the queue and invoke the function with batches of up to BatchSize messages
  (gathered within MaximumBatchingWindowInSeconds), several batches at once: five concurrent
  invocations when messages appear, up to 300 more a minute while they keep coming, never more
  than ScalingConfig's MaximumConcurrency;
- a batch that succeeds is deleted from the queue; with ReportBatchItemFailures, all of it but the
  messages the function names; a function error or timeout deletes nothing;
- a throttled invocation (the function never ran) is retried with backoff while the batch is
  still invisible (Lambda advises a visibility timeout of six times the function's timeout for
  this); after that it is left to the queue, which delivers it again (and counts the receive);
- what is not deleted becomes visible again when its visibility timeout ends and is received
  again; SQS itself (moto) moves a message past its RedrivePolicy's maxReceiveCount to the
  dead-letter queue.

Unlike a stream's, a queue's mapping has no checkpoint and no retry of its own: the queue retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from localcloud.lambda_.event_source_mapping import Invoke, Record, passes_filters
from localcloud.lambda_.runtime import TooManyRequestsException
from stack_definition.event_sources import QueueMapping

log = logging.getLogger("event-source-mapping")

MAX_RECEIVE = 10  # ReceiveMessage's MaxNumberOfMessages
LONG_POLL_SECONDS = 1  # short, so that a stopping region is not kept waiting
INITIAL_CONCURRENCY = 5
SCALE_UP_PER_SECOND = 300 / 60


class QueueSource:
    """One queue as a mapping reads it: Lambda-shaped records, deleted when done."""

    def __init__(self, sqs: Any, url: str, arn: str, region: str) -> None:
        self._sqs = sqs
        self.url = url
        self.arn = arn
        self._region = region

    def receive(self, limit: int, wait_seconds: int) -> list[Record]:
        answer = self._sqs.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=min(limit, MAX_RECEIVE),
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return [self._record(message) for message in answer.get("Messages", [])]

    def _record(self, message: dict[str, Any]) -> Record:
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.arn,
            "awsRegion": self._region,
        }

    def delete(self, records: list[Record]) -> None:
        for first in range(0, len(records), MAX_RECEIVE):
            chunk = records[first : first + MAX_RECEIVE]
            self._sqs.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)],
            )


class Scaling:
    """How many batches may be in the function at once: five when messages appear after a quiet
    spell, then 300 more a minute while they keep coming, capped by MaximumConcurrency."""

    def __init__(self, maximum: int, clock: Any = time.monotonic) -> None:
        self._maximum = maximum
        self._clock = clock
        self._busy_since: float | None = None

    def allowed(self) -> int:
        if self._busy_since is None:
            return min(self._maximum, INITIAL_CONCURRENCY)
        grown = INITIAL_CONCURRENCY + int(SCALE_UP_PER_SECOND * (self._clock() - self._busy_since))
        return min(self._maximum, grown)

    def busy(self) -> None:
        if self._busy_since is None:
            self._busy_since = self._clock()

    def quiet(self) -> None:
        self._busy_since = None


class QueueEventSourceMapping:
    def __init__(
        self,
        settings: QueueMapping,
        source: QueueSource,
        invoke: Invoke,
        *,
        poll_interval: float,
        visibility_timeout: float = 30,
    ) -> None:
        self.settings = settings
        self._visibility_timeout = visibility_timeout  # the queue's: how long a batch may be retried
        self._source = source
        self._invoke = invoke
        self._poll_interval = poll_interval
        self.scaling = Scaling(settings.max_concurrency)
        self.in_flight: set[asyncio.Task[None]] = set()
        self._stopping = False

    def stop(self) -> None:
        """End `run` after its current poll, handing what that poll receives to the function (a
        cancelled poll would leave its messages invisible until their visibility timeout)."""
        self._stopping = True

    async def run(self) -> None:
        while not self._stopping:
            free = self.scaling.allowed() - len(self.in_flight)
            if free <= 0:
                await asyncio.wait(self.in_flight, return_when=asyncio.FIRST_COMPLETED)
                continue
            records = await self._receive(free * self.settings.batch_size)
            if not records:
                if not self.in_flight:
                    self.scaling.quiet()
                continue
            self.scaling.busy()
            records = await self._fill_window(records, free * self.settings.batch_size)
            size = self.settings.batch_size
            for first in range(0, len(records), size):
                task = asyncio.create_task(self.deliver(records[first : first + size]))
                self.in_flight.add(task)
                task.add_done_callback(self.in_flight.discard)

    async def _receive(self, limit: int, wait_seconds: int = LONG_POLL_SECONDS) -> list[Record]:
        """A long poll; a failed call (the endpoint unreachable, throttled) is retried at the next
        poll, for as long as it takes: it never ends the mapping."""
        try:
            return await asyncio.to_thread(self._source.receive, limit, wait_seconds)
        except (BotoCoreError, ClientError) as error:
            log.warning("cannot receive from %s (%s); retrying", self._source.url, error)
            await asyncio.sleep(self._poll_interval)
            return []

    async def _fill_window(self, records: list[Record], limit: int) -> list[Record]:
        """With a batching window, what else arrives within it, up to `limit` records."""
        deadline = time.monotonic() + self.settings.batching_window
        while len(records) < limit and deadline > time.monotonic():
            records += await self._receive(limit - len(records), wait_seconds=0)
            await asyncio.sleep(min(self._poll_interval, max(0.0, deadline - time.monotonic())))
        return records

    async def deliver(self, batch: list[Record]) -> None:
        """One invocation; then delete what is done, and leave the rest to the visibility timeout."""
        settings = self.settings
        kept = [r for r in batch if passes_filters(r, settings.filters)]  # Lambda deletes the others
        done: list[Record] = [r for r in batch if r not in kept]
        if kept:
            try:
                result = await self._invoke_unthrottled(kept)
            except TooManyRequestsException as error:
                log.warning("%s; %d messages left to the visibility timeout", error, len(kept))
            except Exception:
                log.exception("%s failed on a batch of %d messages", settings.function, len(kept))
            else:
                failures = (
                    (result or {}).get("batchItemFailures") or []
                    if settings.report_batch_item_failures
                    else []
                )
                failed = {f.get("itemIdentifier") for f in failures}
                if failed <= {r["messageId"] for r in kept}:
                    done += [r for r in kept if r["messageId"] not in failed]
                else:  # an identifier not in the batch: Lambda counts the whole batch as failed
                    log.error("%s reported unknown item identifiers: %s", settings.function, failed)
        if done:
            with contextlib.suppress(BotoCoreError, ClientError):  # undeleted: received again, as in AWS
                await asyncio.to_thread(self._source.delete, done)

    async def _invoke_unthrottled(self, batch: list[Record]) -> Any:
        """Invoke, retrying throttles with backoff until the batch would be visible again."""
        deadline = time.monotonic() + self._visibility_timeout
        delay = 0.05
        while True:
            try:
                return await self._invoke(self.settings.function, {"Records": batch})
            except TooManyRequestsException:
                if time.monotonic() + delay > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

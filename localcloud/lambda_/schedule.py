"""EventBridge's scheduled rules (SAM's `Schedule` events) for a region's functions: each rule
invokes its function with a scheduled event (or the rule's `Input`) at the start, as soon as the
region is up, and then once every period.

The invocations go through the region's Lambda runtime, as the event source mappings' do, so a
region whose Lambda fails throttles them too. EventBridge invokes asynchronously and does not wait
for the function: a beat that comes while the previous invocation still runs starts another one,
and a beat that fails (an error, a timeout) is logged and the schedule goes on. A throttled beat
is tried again as Lambda's asynchronous invocation does (after 1 s, then doubling up to 5 minutes,
for as long as the function's `MaximumEventAgeInSeconds`, 6 hours unless set), so a function whose
region's Lambda failed runs again soon after the heal. Lambda's retries of a function error are not
played: the next beat comes within the period."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from localcloud.lambda_.event_source_mapping import Invoke
from localcloud.lambda_.runtime import TooManyRequestsException
from stack_definition.event_sources import Schedule

log = logging.getLogger("schedule")

# Lambda's asynchronous invocation retries a throttled event from 1 s, doubling, at most 5 minutes
# apart, until the event is older than the function's maximum event age.
THROTTLE_RETRY_FIRST, THROTTLE_RETRY_MAX = 1.0, 300.0


class ScheduledRule:
    """One rule in one region."""

    def __init__(
        self,
        settings: Schedule,
        invoke: Invoke,
        *,
        region: str,
        account: str,
        stack_name: str,
        first_retry: float = THROTTLE_RETRY_FIRST,
    ) -> None:
        self.settings = settings
        self._first_retry = first_retry
        self._invoke = invoke
        self._region = region
        self._account = account
        # CloudFormation names a rule without `Name` after the stack and its logical id (and a
        # random suffix, left out here).
        self.name = settings.name or f"{stack_name}-{settings.rule}"[:64]
        self.in_flight: set[asyncio.Task[None]] = set()

    @property
    def arn(self) -> str:
        return f"arn:aws:events:{self._region}:{self._account}:rule/{self.name}"

    async def run(self) -> None:
        """Beat at the start and then every period, for as long as the task runs. A beat the loop
        was too busy to start on time is not made up for: the next one keeps to the period."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            self._beat()
            due += self.settings.period
            now = loop.time()
            while due <= now:  # beats missed while the loop was held up
                due += self.settings.period
            await asyncio.sleep(due - now)

    def _beat(self) -> None:
        task = asyncio.create_task(self._deliver(self.event()))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    def event(self) -> dict[str, Any]:
        """What the function gets: the rule's `Input` when it has one, else EventBridge's scheduled
        event for now."""
        if self.settings.input is not None:
            given: dict[str, Any] = json.loads(self.settings.input)
            return given
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self._account,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self._region,
            "resources": [self.arn],
            "detail": {},
        }

    async def _deliver(self, event: dict[str, Any]) -> None:
        function = self.settings.function
        delay, waited = self._first_retry, 0.0
        while True:
            try:
                await self._invoke(function, event)
            except TooManyRequestsException as error:
                if waited + delay > self.settings.max_event_age:
                    log.warning("%s: %s; this beat is too old to try again: dropped", self.name, error)
                    return
                log.warning("%s: %s; tried again in %.0f s", self.name, error, delay)
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, THROTTLE_RETRY_MAX)
                continue
            except Exception:
                log.exception("%s: %s failed; the schedule goes on", self.name, function)
            return

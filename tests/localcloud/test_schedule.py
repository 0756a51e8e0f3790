"""A function's `Schedule` events: read from the template as rates (cron and EventBridge Scheduler
refused, naming the function), and played as EventBridge rules that invoke the function at the
start and then every period, through the region's Lambda runtime, without waiting for each other
and without stopping when a beat fails or is throttled."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import textwrap
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from localcloud.aws import call_counter, faults
from localcloud.lambda_.runtime import LambdaRuntime, TooManyRequestsException
from localcloud.lambda_.schedule import ScheduledRule
from stack_definition.cloudformation import Raw, Unresolvable, load_raw
from stack_definition.event_sources import Schedule, schedules
from stack_definition.template import load

REGION = "eu-west-2"
ACCOUNT = "123456789012"
PERIOD = 0.2  # seconds: a minute, shortened so that a test sees several beats
WAIT = 10  # seconds a test waits for what it expects before failing

# The presence keeper as the template declares it.
KEEPER = """
Resources:
  PresenceKeeperFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: chat.handlers.presence_keeper.handler
      Timeout: 55
      MemorySize: 128
      Events:
        Beat:
          Type: Schedule
          Properties:
            Schedule: rate(1 minute)
"""


def function_with_events(events: dict[str, Any]) -> Raw:
    return {
        "Resources": {
            "KeeperFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"Handler": "keeper.handler", "Events": events},
            }
        }
    }


def every(expression: str) -> Raw:
    return function_with_events({"Beat": {"Type": "Schedule", "Properties": {"Schedule": expression}}})


# ---- the template ------------------------------------------------------------------------------


def test_the_presence_keepers_schedule_is_a_rule_that_beats_every_60_seconds(tmp_path: Path) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(textwrap.dedent(KEEPER))

    assert schedules(load_raw(template)) == [
        Schedule(
            function="PresenceKeeperFunction",
            rule="PresenceKeeperFunctionBeat",
            name=None,
            period=60.0,
            input=None,
        )
    ]


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("rate(1 minute)", 60),
        ("rate(5 minutes)", 300),
        ("rate(1 hour)", 3600),
        ("rate(2 hours)", 7200),
        ("rate(1 day)", 86400),
        ("rate(1 second)", 1),
        ("rate(30 seconds)", 30),
    ],
)
def test_a_rate_is_read_as_its_period_in_seconds(expression: str, seconds: float) -> None:
    (schedule,) = schedules(every(expression))
    assert schedule.period == seconds


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0/5 * * * ? *)",
        "rate(1 minutes)",  # EventBridge wants the singular for 1
        "rate(5 minute)",  # and the plural for more
        "rate(0 minutes)",
        "rate(1.5 minutes)",
        "rate(2 weeks)",
    ],
)
def test_anything_but_a_rate_is_refused_naming_the_function_and_its_event(expression: str) -> None:
    with pytest.raises(Unresolvable, match=r"KeeperFunction's event Beat: .*" + re.escape(repr(expression))):
        schedules(every(expression))


def test_an_eventbridge_scheduler_schedule_is_refused_naming_the_function() -> None:
    raw = function_with_events(
        {"Beat": {"Type": "ScheduleV2", "Properties": {"ScheduleExpression": "rate(1 minute)"}}}
    )
    with pytest.raises(Unresolvable, match=r"KeeperFunction's event Beat: .*ScheduleV2"):
        schedules(raw)


def test_a_disabled_rule_never_fires_and_other_events_are_not_schedules() -> None:
    raw = function_with_events(
        {
            "Off": {"Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)", "Enabled": False}},
            "Paused": {"Type": "Schedule", "Properties": {"Schedule": "rate(1 minute)", "State": "DISABLED"}},
            "Api": {"Type": "HttpApi", "Properties": {"Path": "/x", "Method": "GET"}},
            "On": {
                "Type": "Schedule",
                "Properties": {"Schedule": "rate(2 minutes)", "Name": "keeper", "Input": '{"a": 1}'},
            },
        }
    )
    assert schedules(raw) == [
        Schedule(
            function="KeeperFunction", rule="KeeperFunctionOn", name="keeper", period=120.0, input='{"a": 1}'
        )
    ]


def test_the_repository_template_gives_the_local_stack_its_schedules() -> None:
    template = load()
    assert template.schedules == schedules(template.raw)


# ---- the rule ----------------------------------------------------------------------------------

KEEPER_SCHEDULE = Schedule(
    function="PresenceKeeperFunction", rule="PresenceKeeperFunctionBeat", name=None, period=PERIOD, input=None
)


def rule(invoke: Any, settings: Schedule = KEEPER_SCHEDULE, first_retry: float = 3600.0) -> ScheduledRule:
    """A rule; a throttled beat is tried again after `first_retry` s (by default: not in a test)."""
    return ScheduledRule(
        settings, invoke, region=REGION, account=ACCOUNT, stack_name="chat", first_retry=first_retry
    )


class Invocations:
    """A fake invoke: each call's time (the loop's clock), function and event; `arrived(n)` is set
    when the n-th call has come; `answer` (awaited) decides what each call does."""

    def __init__(self, answer: Callable[[int], Any] | None = None) -> None:
        self.calls: list[tuple[float, str, dict[str, Any]]] = []
        self._arrived: dict[int, asyncio.Event] = {}
        self._answer = answer

    def arrived(self, count: int) -> asyncio.Event:
        return self._arrived.setdefault(count, asyncio.Event())

    async def __call__(self, function: str, event: dict[str, Any]) -> Any:
        self.calls.append((asyncio.get_running_loop().time(), function, event))
        self.arrived(len(self.calls)).set()
        return await self._answer(len(self.calls)) if self._answer else None


async def run_until(scheduled: ScheduledRule, arrived: asyncio.Event) -> None:
    task = asyncio.create_task(scheduled.run())
    try:
        await asyncio.wait_for(arrived.wait(), WAIT)
    finally:
        task.cancel()


def test_the_rule_invokes_at_the_start_and_again_after_each_period_with_a_scheduled_event() -> None:
    invocations = Invocations()

    async def scenario() -> float:
        start = asyncio.get_running_loop().time()
        await run_until(rule(invocations), invocations.arrived(3))
        return start

    start = asyncio.run(scenario())

    (first, *_), (second, *_), (third, *_) = invocations.calls[:3]
    assert first - start < PERIOD / 2  # at the start, not after a period
    assert second - first == pytest.approx(PERIOD, abs=0.05)
    assert third - start == pytest.approx(2 * PERIOD, abs=0.05)  # on the period, without drift
    events = [event for _, _, event in invocations.calls]
    assert {function for _, function, _ in invocations.calls} == {"PresenceKeeperFunction"}
    assert events[0] == {
        "version": "0",
        "id": events[0]["id"],
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": events[0]["time"],
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/chat-PresenceKeeperFunctionBeat"],
        "detail": {},
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", events[0]["time"])
    assert len({event["id"] for event in events}) == len(events)  # each beat is an event of its own


def test_a_rule_with_input_sends_its_input_to_the_function() -> None:
    settings = replace(KEEPER_SCHEDULE, name="keeper", input='{"sweep": true}')
    assert rule(None, settings).event() == {"sweep": True}
    assert rule(None, settings).arn == f"arn:aws:events:{REGION}:{ACCOUNT}:rule/keeper"


def test_a_beat_starts_while_the_previous_invocation_still_runs() -> None:
    finished: list[int] = []

    async def scenario() -> list[int]:
        release = asyncio.Event()

        async def long_first_invocation(number: int) -> None:
            if number == 1:
                await release.wait()  # the keeper's 45 s
            finished.append(number)

        invocations = Invocations(long_first_invocation)
        scheduled = rule(invocations)
        # a rule that waited for each invocation would never make the second call: it times out
        await run_until(scheduled, invocations.arrived(2))
        finished_when_the_second_came = list(finished)
        release.set()
        await asyncio.wait_for(asyncio.gather(*scheduled.in_flight), WAIT)
        return finished_when_the_second_came

    assert 1 not in asyncio.run(scenario())
    assert 1 in finished


def test_a_throttled_or_failed_beat_is_logged_and_the_schedule_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def throttled_then_failing(number: int) -> None:
        if number == 1:
            raise TooManyRequestsException("PresenceKeeperFunction")
        if number == 2:
            raise RuntimeError("the keeper broke")

    invocations = Invocations(throttled_then_failing)
    with caplog.at_level(logging.WARNING, logger="schedule"):
        asyncio.run(run_until(rule(invocations), invocations.arrived(3)))

    assert len(invocations.calls) >= 3
    throttled, failed = (r for r in caplog.records if r.name == "schedule")
    assert "Rate Exceeded: PresenceKeeperFunction" in throttled.getMessage()
    assert failed.exc_info is not None
    assert "the keeper broke" in str(failed.exc_info[1])


CALLS: list[dict[str, Any]] = []


def handler(event: dict[str, Any], _: Any) -> None:
    """A function that records that it ran."""
    CALLS.append(event)


def test_while_the_regions_lambda_fails_beats_are_throttled_and_after_heal_the_function_runs() -> None:
    # given a region's runtime with one function, and its rule invoking it through the runtime
    template = load()
    function = next(iter(template.functions.values()))
    template.functions = {"Keeper": replace(function, handler="tests.localcloud.test_schedule.handler")}
    CALLS.clear()

    async def scenario() -> tuple[int, int]:
        runtime = LambdaRuntime(template, REGION, {}, asyncio.Event())
        outcomes: list[str] = []
        ran = asyncio.Event()
        throttled_twice = asyncio.Event()

        async def invoke(function_id: str, event: dict[str, Any]) -> Any:
            try:
                result = await runtime.invoke(function_id, event)
            except TooManyRequestsException:
                outcomes.append("throttled")
                if outcomes.count("throttled") == 2:
                    throttled_twice.set()
                raise
            outcomes.append("ran")
            ran.set()
            return result

        task = asyncio.create_task(rule(invoke, replace(KEEPER_SCHEDULE, function="Keeper")).run())
        try:
            # when the region's Lambda fails, beats are throttled and the handler does not run
            await asyncio.wait_for(throttled_twice.wait(), WAIT)
            ran_while_failing = len(CALLS)
            # and after heal the next beat runs it
            faults.set_failing([])
            await asyncio.wait_for(ran.wait(), WAIT)
        finally:
            task.cancel()
        return ran_while_failing, len(CALLS)

    faults.set_failing(["lambda"])
    try:
        ran_while_failing, ran_after_heal = asyncio.run(scenario())
    finally:
        faults.set_failing([])
    assert ran_while_failing == 0
    assert ran_after_heal >= 1
    assert CALLS[0]["detail-type"] == "Scheduled Event"


def calling_handler(event: dict[str, Any], context: Any) -> None:
    """A handler that makes one AWS call's worth of counting, as a handler's boto3 call would."""
    call_counter.count("dynamodb.PutItem")


def test_a_scheduled_functions_invocations_and_calls_are_counted_apart_from_everyone_elses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given two functions, one of them scheduled (a region's fixed cost, not a user's)
    monkeypatch.setattr(call_counter, "ENABLED", True)
    monkeypatch.setattr(call_counter, "_apart", set())
    template = load()
    function = next(iter(template.functions.values()))
    plain = replace(function, handler="tests.localcloud.test_schedule.calling_handler")
    template.functions = {"Keeper": plain, "Connect": plain}
    call_counter.count_apart(["Keeper"])
    call_counter.counts(reset=True)

    async def scenario() -> None:
        runtime = LambdaRuntime(template, REGION, {}, asyncio.Event())
        await runtime.invoke("Keeper", {})
        await runtime.invoke("Connect", {})

    asyncio.run(scenario())
    assert call_counter.counts(reset=True) == {
        "schedule.lambda.Invoke:Keeper": 1,
        "schedule.dynamodb.PutItem": 1,
        "lambda.Invoke:Connect": 1,
        "dynamodb.PutItem": 1,
    }


def test_a_throttled_beat_is_tried_again_soon_as_lambdas_asynchronous_invocation_does() -> None:
    # given a rule whose period is an hour, and an invoke throttled twice, then running
    async def throttled_twice(number: int) -> None:
        if number <= 2:
            raise TooManyRequestsException("PresenceKeeperFunction")

    invocations = Invocations(throttled_twice)
    hourly = replace(KEEPER_SCHEDULE, period=3600.0)
    # when the first beat is throttled, it is tried again (after 0.05 s, then 0.1 s), not an hour later
    asyncio.run(run_until(rule(invocations, hourly, first_retry=0.05), invocations.arrived(3)))
    assert len(invocations.calls) == 3
    # the same event each time: one beat, delivered late
    assert len({json.dumps(event, sort_keys=True) for *_, event in invocations.calls}) == 1


def test_a_throttled_beat_is_dropped_once_older_than_the_functions_maximum_event_age(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given a function whose events may be at most 0.3 s old, and a Lambda that throttles it
    async def throttled(number: int) -> None:
        raise TooManyRequestsException("PresenceKeeperFunction")

    invocations = Invocations(throttled)
    young = replace(KEEPER_SCHEDULE, period=3600.0, max_event_age=0.3)
    scheduled = rule(invocations, young, first_retry=0.05)

    async def until_the_beat_ends() -> None:
        task = asyncio.create_task(scheduled.run())
        try:
            await asyncio.wait_for(invocations.arrived(1).wait(), WAIT)
            await asyncio.wait_for(asyncio.gather(*scheduled.in_flight), WAIT)
        finally:
            task.cancel()

    with caplog.at_level(logging.WARNING, logger="schedule"):
        asyncio.run(until_the_beat_ends())
    # then it was tried at 0, 0.05 and 0.15 s; the next try (0.35 s) would be too old: dropped
    assert len(invocations.calls) == 3
    assert "too old to try again" in caplog.records[-1].getMessage()


def test_the_presence_keepers_events_are_tried_for_a_minute_at_most() -> None:
    # a minute's event is worth nothing once the next one has come: no keepers piled up after an outage
    (keeper,) = [s for s in load().schedules if s.function == "PresenceKeeperFunction"]
    assert keeper.max_event_age == 60
    raw = load().raw["Resources"]["PresenceKeeperFunction"]["Properties"]["EventInvokeConfig"]
    assert raw["MaximumRetryAttempts"] == 0

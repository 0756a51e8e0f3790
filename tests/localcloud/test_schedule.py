"""A function's `Schedule` events: read from the template as rates (cron and EventBridge Scheduler
refused, naming the function)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from stack_definition.cloudformation import Raw, Unresolvable, load_raw
from stack_definition.event_sources import Schedule, schedules
from stack_definition.template import load

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

"""What template.yaml says about Lambda's event sources: the queues (with their redrive to a
dead-letter queue), the event source mappings that read a table's stream or a queue, and the
EventBridge rules that invoke a function on a schedule (SAM's `Schedule` events)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from stack_definition.cloudformation import Context, Raw, Unresolvable, resources_of_type


@dataclass(frozen=True)
class StreamMapping:
    function: str
    batch_size: int
    batching_window: float
    starting_position: str
    report_batch_item_failures: bool
    bisect_on_error: bool
    max_retries: int
    filters: list[str]  # Lambda event filter patterns (JSON)
    max_record_age: float = -1  # seconds; -1: until the record expires


@dataclass(frozen=True)
class Queue:
    logical_id: str
    visibility_timeout: int
    retention: int
    dead_letter_queue: str | None  # its logical id (RedrivePolicy)
    max_receive_count: int


@dataclass(frozen=True)
class QueueMapping:
    """An event source mapping from an SQS queue (Lambda polls the queue, up to MaximumConcurrency
    invocations at a time)."""

    function: str
    queue: str  # logical id
    batch_size: int
    batching_window: float
    report_batch_item_failures: bool
    max_concurrency: int
    filters: list[str]


def event_sources(raw: Raw) -> tuple[StreamMapping, dict[str, Queue], list[QueueMapping]]:
    """The one stream mapping, the queues by logical id, and the queues' mappings."""
    queues = {
        logical_id: _queue(logical_id, resource["Properties"])
        for logical_id, resource in resources_of_type(raw, "AWS::SQS::Queue").items()
    }
    streams: list[StreamMapping] = []
    queue_mappings: list[QueueMapping] = []
    for mapping in resources_of_type(raw, "AWS::Lambda::EventSourceMapping").values():
        props = mapping["Properties"]
        filters = [f["Pattern"] for f in props.get("FilterCriteria", {}).get("Filters", [])]
        source = props["EventSourceArn"].get("Fn::GetAtt", [None])[0]
        if source in queues:
            queue_mappings.append(
                QueueMapping(
                    function=props["FunctionName"]["Ref"],
                    queue=source,
                    batch_size=int(props.get("BatchSize", 10)),
                    batching_window=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                    report_batch_item_failures="ReportBatchItemFailures"
                    in props.get("FunctionResponseTypes", []),
                    # Lambda's own bound without a ScalingConfig: the account's concurrency. The
                    # template's value is a parameter: its default here (no region needed for it).
                    max_concurrency=int(
                        Context(raw, "", "").resolve(
                            props.get("ScalingConfig", {}).get("MaximumConcurrency", 1000)
                        )
                    ),
                    filters=filters,
                )
            )
            continue
        streams.append(
            StreamMapping(
                function=props["FunctionName"]["Ref"],
                batch_size=int(props.get("BatchSize", 100)),
                batching_window=float(props.get("MaximumBatchingWindowInSeconds", 0)),
                starting_position=props.get("StartingPosition", "LATEST"),
                report_batch_item_failures="ReportBatchItemFailures"
                in props.get("FunctionResponseTypes", []),
                bisect_on_error=bool(props.get("BisectBatchOnFunctionError", False)),
                max_retries=int(props.get("MaximumRetryAttempts", -1)),
                filters=filters,
                max_record_age=float(props.get("MaximumRecordAgeInSeconds", -1)),
            )
        )
    (stream,) = streams
    return stream, queues, queue_mappings


def _queue(logical_id: str, props: dict[str, Any]) -> Queue:
    redrive = props.get("RedrivePolicy", {})
    target = redrive.get("deadLetterTargetArn", {}).get("Fn::GetAtt", [None])[0]
    return Queue(
        logical_id=logical_id,
        visibility_timeout=int(props.get("VisibilityTimeout", 30)),
        retention=int(props.get("MessageRetentionPeriod", 345600)),
        dead_letter_queue=target,
        max_receive_count=int(redrive.get("maxReceiveCount", 0)),
    )


@dataclass(frozen=True)
class Schedule:
    """An EventBridge rule that invokes a function at a fixed rate: what SAM makes of a function's
    `Schedule` event (an `AWS::Events::Rule` named `<function><event>`)."""

    function: str  # logical id
    rule: str  # the rule's logical id, as SAM names it
    name: str | None  # the rule's `Name`; None: CloudFormation makes one up
    period: float  # seconds
    input: str | None  # `Input`: the JSON EventBridge sends instead of its scheduled event
    # The function's `EventInvokeConfig.MaximumEventAgeInSeconds`: how long Lambda keeps trying
    # to deliver a throttled event (6 hours unless set).
    max_event_age: float = 21600.0


# EventBridge's rate expression: a positive whole number and its unit, singular for 1 only.
# Seconds are not EventBridge's (its shortest rate is a minute): they are read here for the
# local stack's own tests and would be refused by a deploy.
_RATE = re.compile(r"rate\((?P<value>[1-9][0-9]*) (?P<unit>second|minute|hour|day)(?P<plural>s?)\)")
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def schedules(raw: Raw) -> list[Schedule]:
    """Every function's enabled `Schedule` events. A cron expression or an EventBridge Scheduler
    schedule (`ScheduleV2`) is refused (Unresolvable, naming the function): not played locally."""
    found: list[Schedule] = []
    for function, resource in resources_of_type(raw, "AWS::Serverless::Function").items():
        for event_name, event in resource["Properties"].get("Events", {}).items():
            where = f"{function}'s event {event_name}"
            if event["Type"] == "ScheduleV2":
                raise Unresolvable(f"{where}: EventBridge Scheduler (ScheduleV2) is not played locally")
            if event["Type"] != "Schedule":
                continue
            try:  # a parameter may give a value: its default here (no region needed for it)
                props = Context(raw, "", "").resolve(event.get("Properties", {}))
            except Unresolvable as error:
                raise Unresolvable(f"{where}: {error}") from error
            if not props.get("Enabled", True) or props.get("State", "ENABLED") != "ENABLED":
                continue  # the rule exists, and never fires
            found.append(
                Schedule(
                    function=function,
                    rule=f"{function}{event_name}",
                    name=props.get("Name"),
                    period=_period(str(props["Schedule"]), where),
                    input=props.get("Input"),
                    max_event_age=float(
                        resource["Properties"]
                        .get("EventInvokeConfig", {})
                        .get("MaximumEventAgeInSeconds", 21600)
                    ),
                )
            )
    return found


def _period(expression: str, where: str) -> float:
    """A rate expression's period in seconds."""
    rate = _RATE.fullmatch(expression.strip())
    if rate is None:
        raise Unresolvable(
            f"{where}: {expression!r} is not played locally, only rate(N second|minute|hour|day[s])"
        )
    value = int(rate["value"])
    if (value == 1) == bool(rate["plural"]):  # EventBridge refuses rate(1 minutes) and rate(5 minute)
        raise Unresolvable(f"{where}: {expression!r}: EventBridge wants the singular unit for 1 only")
    return float(value * _UNIT_SECONDS[rate["unit"]])

"""What template.yaml says about Lambda's event sources: the queues (with their redrive to a
dead-letter queue) and the event source mappings that read a table's stream or a queue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stack_definition.cloudformation import Context, Raw, resources_of_type


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

"""Large rooms: the page queue, its worker and mapping, the dead-letter queue and the alarms."""

from __future__ import annotations

from typing import Any

from tests.template.cfn import Template, resources_of_type, stack_in


def _mapping(template: Template) -> dict[str, Any]:
    properties: dict[str, Any] = resources_of_type(template, "AWS::Lambda::EventSourceMapping")[
        "FanoutWorkerMapping"
    ]["Properties"]
    return properties


def test_given_the_page_queue_then_one_page_is_one_invocation_with_partial_batch_responses(
    template: Template,
) -> None:
    mapping = _mapping(template)
    assert mapping["FunctionName"] == {"Ref": "FanoutWorkerFunction"}
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["FanoutPageQueue", "Arn"]}
    assert mapping["BatchSize"] == 1  # so no invocation makes more than FANOUT_PAGE_POSTS posts
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    workers = stack_in(template, "us-east-1").resolve(mapping["ScalingConfig"]["MaximumConcurrency"])
    assert 2 <= workers <= 1000


def test_given_both_fanout_functions_then_they_agree_on_the_page_bound_and_queue(
    functions: dict[str, dict[str, Any]],
) -> None:
    stream, worker = (
        functions[n]["Properties"]["Environment"]["Variables"]
        for n in ("FanoutFunction", "FanoutWorkerFunction")
    )
    for name in ("FANOUT_PAGE_POSTS", "FANOUT_PAGE_QUEUE_URL", "FANOUT_CONCURRENCY"):
        assert stream[name] == worker[name], name
    assert stream["FANOUT_PAGE_QUEUE_URL"] == {"Ref": "FanoutPageQueue"}
    assert 1 <= int(stream["FANOUT_PAGE_POSTS"]) <= 1000


def test_given_a_failing_page_then_it_is_retried_after_the_workers_timeout_and_then_dead_lettered(
    resources: dict[str, dict[str, Any]],
) -> None:
    queue = resources["FanoutPageQueue"]["Properties"]
    worker = resources["FanoutWorkerFunction"]["Properties"]
    # Lambda's advice for a queue it polls: a visibility timeout of six times the function's.
    assert queue["VisibilityTimeout"] >= 6 * worker["Timeout"]
    redrive = queue["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["FanoutPageDeadLetterQueue", "Arn"]}
    assert 2 <= redrive["maxReceiveCount"] <= 5
    # Every delivery fits within the retention, so a page reaches the DLQ rather than expiring.
    assert redrive["maxReceiveCount"] * queue["VisibilityTimeout"] < queue["MessageRetentionPeriod"]
    assert resources["FanoutPageDeadLetterQueue"]["Properties"]["MessageRetentionPeriod"] == 1209600
    for name in ("FanoutPageQueue", "FanoutPageDeadLetterQueue"):
        assert resources[name]["Properties"]["SqsManagedSseEnabled"] is True, name


def test_given_the_page_queues_then_dead_letters_and_a_backlog_are_alarmed(
    resources: dict[str, dict[str, Any]],
) -> None:
    alarms = {
        (a["Properties"]["MetricName"], a["Properties"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]): a[
            "Properties"
        ]
        for a in resources.values()
        if a["Type"] == "AWS::CloudWatch::Alarm" and a["Properties"].get("Namespace") == "AWS/SQS"
    }
    dead = alarms[("ApproximateNumberOfMessagesVisible", "FanoutPageDeadLetterQueue")]
    assert dead["Threshold"] == 1
    assert dead["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    age = alarms[("ApproximateAgeOfOldestMessage", "FanoutPageQueue")]
    assert age["Threshold"] <= 60
    for alarm in (dead, age):
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]

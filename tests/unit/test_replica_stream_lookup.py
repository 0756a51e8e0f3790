"""The replica-stream lookup (functions/custom_resources/replica_stream_lookup.py): it waits for this
region's replica of the messages table and answers CloudFormation, whatever happens. DynamoDB is a
botocore Stubber; the answer to CloudFormation is captured instead of sent."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from custom_resources import replica_stream_lookup as lookup_module
from custom_resources.replica_stream_lookup import ANSWER_MARGIN_SECONDS, POLL_SECONDS, handler, lookup

TABLE = "resilient-chat-messages"
STREAM = (
    "arn:aws:dynamodb:eu-west-2:123456789012:table/resilient-chat-messages/stream/2026-01-01T00:00:00.000"
)


class Clock:
    """The invocation's remaining time, advanced by the lookup's sleeps."""

    log_stream_name = "2026/01/01/[$LATEST]abc"

    def __init__(self, remaining_seconds: float) -> None:
        self.remaining_seconds = remaining_seconds
        self.sleeps: list[float] = []

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining_seconds * 1000)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.remaining_seconds -= seconds


def _event(request_type: str = "Create", **properties: str) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": "https://cloudformation-custom-resource-response.example/answer",
        "StackId": "arn:aws:cloudformation:eu-west-2:123456789012:stack/resilient-chat/guid",
        "RequestId": "request-1",
        "LogicalResourceId": "MessagesReplicaStream",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:…", **properties},
    }


def _table(status: str, stream: str | None = STREAM) -> dict[str, Any]:
    table: dict[str, Any] = {"TableName": TABLE, "TableStatus": status}
    if stream is not None:
        table["LatestStreamArn"] = stream
    return {"Table": table}


@pytest.fixture
def dynamodb() -> Any:
    return boto3.client(
        "dynamodb", region_name="eu-west-2", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def test_given_the_replica_appears_then_becomes_active_when_created_then_its_stream_arn_is_the_answer(
    dynamodb: Any,
) -> None:
    clock = Clock(remaining_seconds=900)
    with Stubber(dynamodb) as stub:
        stub.add_client_error(
            "describe_table", "ResourceNotFoundException", expected_params={"TableName": TABLE}
        )
        stub.add_response("describe_table", _table("CREATING", stream=None), {"TableName": TABLE})
        stub.add_response("describe_table", _table("ACTIVE"), {"TableName": TABLE})
        answer = lookup(_event(TableName=TABLE), clock, "pending", client=dynamodb, sleep=clock.sleep)
        stub.assert_no_pending_responses()
    assert answer == ("SUCCESS", f"replica {TABLE} is ACTIVE", STREAM, {"StreamArn": STREAM})
    assert clock.sleeps == [POLL_SECONDS, POLL_SECONDS]


def test_given_no_replica_ever_when_the_time_runs_out_then_it_fails_in_time_with_the_last_reason(
    dynamodb: Any,
) -> None:
    clock = Clock(remaining_seconds=ANSWER_MARGIN_SECONDS + 2 * POLL_SECONDS)
    with Stubber(dynamodb) as stub:
        for _ in range(2):
            stub.add_client_error("describe_table", "ResourceNotFoundException")
        status, reason, physical_id, data = lookup(
            _event(TableName=TABLE), clock, "pending", client=dynamodb, sleep=clock.sleep
        )
    assert (status, physical_id, data) == ("FAILED", "pending", {})
    assert "deploy the primary region's stack" in reason
    assert clock.remaining_seconds >= ANSWER_MARGIN_SECONDS - POLL_SECONDS  # time left to answer


def test_given_a_throttled_describe_when_polling_then_it_keeps_waiting_and_succeeds(dynamodb: Any) -> None:
    clock = Clock(remaining_seconds=900)
    with Stubber(dynamodb) as stub:
        stub.add_client_error("describe_table", "ThrottlingException", http_status_code=400)
        stub.add_response("describe_table", _table("ACTIVE"))
        status, _, physical_id, _ = lookup(
            _event(TableName=TABLE), clock, "pending", client=dynamodb, sleep=clock.sleep
        )
    assert (status, physical_id) == ("SUCCESS", STREAM)


def test_given_a_delete_then_it_succeeds_at_once_without_calling_dynamodb(dynamodb: Any) -> None:
    clock = Clock(remaining_seconds=900)
    with Stubber(dynamodb):  # no response queued: any call would fail the test
        answer = lookup(_event("Delete", TableName=TABLE), clock, STREAM, client=dynamodb, sleep=clock.sleep)
    assert answer == ("SUCCESS", "nothing to delete", STREAM, {})


class Sent:
    def __init__(self) -> None:
        self.answers: list[tuple[str, str, str, dict[str, str]]] = []

    def __call__(
        self,
        event: dict[str, Any],
        context: Any,
        status: str,
        reason: str,
        physical_id: str,
        data: dict[str, str],
    ) -> None:
        self.answers.append((status, reason, physical_id, data))


def test_given_an_event_without_the_table_name_then_cloudformation_hears_failed_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent = Sent()
    monkeypatch.setattr(lookup_module, "send", sent)
    handler(_event(), Clock(remaining_seconds=900))
    ((status, reason, physical_id, _),) = sent.answers
    assert (status, physical_id) == ("FAILED", "pending")
    assert "TableName" in reason


def test_a_long_reason_is_cut_so_that_cloudformation_accepts_the_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    requests: list[Any] = []

    class Answered:
        status = 200

        def __enter__(self) -> Answered:
            return self

        def __exit__(self, *_: object) -> None:
            return None

    def urlopen(request: Any, timeout: float) -> Answered:
        requests.append(request)
        return Answered()

    monkeypatch.setattr(lookup_module.urllib.request, "urlopen", urlopen)
    lookup_module.send(_event(), Clock(900), "FAILED", "x" * 5000, "pending", {})
    (request,) = requests
    body = request.data.decode()
    assert request.get_method() == "PUT"
    assert request.get_header("Content-type") == ""
    assert "x" * 900 + " (log stream" in body
    assert "x" * 901 not in body

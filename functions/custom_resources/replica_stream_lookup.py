"""The `Custom::ReplicaStream` resource's function: in a secondary region, CloudFormation has no
attribute for the local replica of the messages global table (the primary region's stack creates
it), so this waits for the replica to be ACTIVE and returns its stream ARN (`StreamArn`).

Only the standard library at the top, and our own response instead of the cfnresponse module:
CloudFormation must get an answer whatever fails (an import, a bad event, a client), or the stack
hangs until the resource's ServiceTimeout. boto3 comes with the Lambda runtime; nothing is bundled.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

POLL_SECONDS = 15
# Stop polling with this much time to spare, so that CloudFormation always gets an answer.
ANSWER_MARGIN_SECONDS = POLL_SECONDS + 15
MAX_REASON_CHARS = 900  # CloudFormation refuses a response over 4 KB

Answer = tuple[str, str, str, dict[str, str]]  # (status, reason, physical id, data)


class LambdaContext(Protocol):
    log_stream_name: str

    def get_remaining_time_in_millis(self) -> int: ...


def handler(event: dict[str, Any], context: LambdaContext) -> None:
    physical_id = event.get("PhysicalResourceId", "pending")
    try:
        status, reason, physical_id, data = lookup(event, context, physical_id)
    except Exception as error:  # noqa: BLE001 - CloudFormation must get an answer, whatever failed
        status, reason, data = "FAILED", f"replica stream lookup failed: {error!r}", {}
    print(f"{status}: {reason}")
    send(event, context, status, reason, physical_id, data)


def lookup(
    event: dict[str, Any],
    context: LambdaContext,
    physical_id: str,
    *,
    client: DynamoDBClient | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Answer:
    """Poll DescribeTable until the replica is ACTIVE with a stream, or the time is up."""
    if event["RequestType"] == "Delete":
        return "SUCCESS", "nothing to delete", physical_id, {}
    name = event["ResourceProperties"]["TableName"]
    if client is None:
        import boto3  # here, so that a failed import is answered too

        client = boto3.client("dynamodb")
    reason = "not checked yet"
    while context.get_remaining_time_in_millis() > ANSWER_MARGIN_SECONDS * 1000:
        try:
            table = client.describe_table(TableName=name)["Table"]
            stream_arn = table.get("LatestStreamArn")
            if table["TableStatus"] == "ACTIVE" and stream_arn:
                return "SUCCESS", f"replica {name} is ACTIVE", stream_arn, {"StreamArn": stream_arn}
            reason = f"replica {name} is {table['TableStatus']}, stream {stream_arn}"
        except client.exceptions.ResourceNotFoundException:
            reason = (
                f"no replica of {name} in this region yet: deploy the primary "
                "region's stack (it creates the global table) and retry"
            )
        except Exception as error:  # noqa: BLE001 - keep waiting; report the last error on timeout
            reason = f"describe_table failed: {error!r}"
        print(reason)
        sleep(POLL_SECONDS)
    return "FAILED", reason, physical_id, {}


def send(
    event: dict[str, Any],
    context: LambdaContext,
    status: str,
    reason: str,
    physical_id: str,
    data: dict[str, str],
) -> None:
    body = json.dumps(
        {
            "Status": status,
            "Reason": f"{reason[:MAX_REASON_CHARS]} (log stream {context.log_stream_name})",
            "PhysicalResourceId": physical_id,
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
            "Data": data,
        }
    ).encode()
    # The pre-signed S3 URL is signed without a content type: send an empty one.
    request = urllib.request.Request(  # noqa: S310 - CloudFormation's own https response URL
        event["ResponseURL"], data=body, method="PUT", headers={"Content-Type": ""}
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - as above
        print(f"CloudFormation answered {response.status}")

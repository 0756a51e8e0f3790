"""The AWS calls that `make deploy` and `make delete` make themselves (sam makes the rest).

One place maps botocore's failures to AwsError, which the scripts print before they stop with exit 1:
only "does not exist" answers are values (None), never a missing credential or a denied call.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

# CloudFront's API (the control plane) lives in us-east-1.
CLOUDFRONT_REGION = "us-east-1"


class AwsError(Exception):
    """An AWS call failed: say why and stop."""


@cache
def client(service: str, region: str) -> Any:
    return boto3.client(service, region_name=region)  # type: ignore[call-overload]


@contextmanager
def failing_as(what: str) -> Iterator[None]:
    try:
        yield
    except (ClientError, BotoCoreError) as error:  # no credentials, access denied, throttling, ...
        raise AwsError(f"cannot {what}: {error}") from error


def describe_stack(stack_name: str, region: str) -> dict[str, Any] | None:
    """The stack as DescribeStacks gives it, or None when CloudFormation says it does not exist."""
    try:
        (stack,) = client("cloudformation", region).describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        message = error.response["Error"].get("Message", "")
        if error.response["Error"].get("Code") == "ValidationError" and message.endswith("does not exist"):
            return None
        raise AwsError(f"cannot read stack {stack_name} in {region}: {error}") from error
    except BotoCoreError as error:
        raise AwsError(f"cannot read stack {stack_name} in {region}: {error}") from error
    return dict(stack)


def stack_outputs(stack_name: str, region: str) -> dict[str, str] | None:
    """The stack's outputs, or None when CloudFormation says the stack does not exist."""
    stack = describe_stack(stack_name, region)
    if stack is None:
        return None
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def list_objects(bucket: str, region: str) -> dict[str, str]:
    """Each object's key and MD5 (the ETag of a single-part upload without KMS)."""
    objects: dict[str, str] = {}
    with failing_as(f"list bucket {bucket} in {region}"):
        for page in client("s3", region).get_paginator("list_objects_v2").paginate(Bucket=bucket):
            objects |= {item["Key"]: item["ETag"].strip('"') for item in page.get("Contents", [])}
    return objects


def put_object(
    bucket: str, region: str, key: str, body: bytes, content_type: str, cache_control: str
) -> None:
    with failing_as(f"upload {key} to bucket {bucket} in {region}"):
        client("s3", region).put_object(
            Bucket=bucket, Key=key, Body=body, ContentType=content_type, CacheControl=cache_control
        )


def delete_objects(bucket: str, region: str, keys: list[str]) -> None:
    with failing_as(f"remove {keys} in bucket {bucket} ({region})"):
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
            objects = [{"Key": key} for key in keys[start : start + 1000]]
            answer = client("s3", region).delete_objects(Bucket=bucket, Delete={"Objects": objects})
            if answer.get("Errors"):
                raise AwsError(f"cannot remove objects in bucket {bucket} ({region}): {answer['Errors']}")


def empty_bucket(bucket: str, region: str) -> int | None:
    """Delete every object (every version, should someone turn versioning on); None: no such bucket."""
    s3 = client("s3", region)
    deleted = 0
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            versions = [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            if versions:
                objects = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions]
                answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": objects})
                if answer.get("Errors"):
                    raise AwsError(f"cannot empty bucket {bucket} in {region}: {answer['Errors']}")
                deleted += len(objects)
    except ClientError as error:
        if error.response["Error"].get("Code") == "NoSuchBucket":
            return None
        raise AwsError(f"cannot empty bucket {bucket} in {region}: {error}") from error
    except BotoCoreError as error:
        raise AwsError(f"cannot empty bucket {bucket} in {region}: {error}") from error
    return deleted


def create_invalidation(distribution_id: str, paths: list[str], reference: str) -> str:
    with failing_as(f"invalidate {paths} in distribution {distribution_id}"):
        answer = client("cloudfront", CLOUDFRONT_REGION).create_invalidation(
            DistributionId=distribution_id,
            InvalidationBatch={
                "Paths": {"Quantity": len(paths), "Items": paths},
                "CallerReference": reference,
            },
        )
    return str(answer["Invalidation"]["Id"])


# ---- make deploy: API Gateway's CloudWatch Logs role (scripts/api_logging.py)
# IAM is global; its API is called through us-east-1.
IAM_REGION = "us-east-1"
API_GATEWAY_TRUST = (
    '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
    '"Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "sts:AssumeRole"}]}'
)


def api_log_role(region: str) -> str | None:
    with failing_as(f"read API Gateway's account settings in {region}"):
        arn = client("apigateway", region).get_account().get("cloudwatchRoleArn")
    return str(arn) if arn else None


def role_arn(name: str) -> str | None:
    iam = client("iam", IAM_REGION)
    try:
        return str(iam.get_role(RoleName=name)["Role"]["Arn"])
    except iam.exceptions.NoSuchEntityException:
        return None
    except (ClientError, BotoCoreError) as error:
        raise AwsError(f"cannot read IAM role {name}: {error}") from error


def create_api_log_role(name: str) -> str:
    iam = client("iam", IAM_REGION)
    with failing_as(f"create IAM role {name}"):
        arn = str(
            iam.create_role(
                RoleName=name,
                AssumeRolePolicyDocument=API_GATEWAY_TRUST,
                Description="API Gateway writes the account's API logs to CloudWatch Logs (make deploy).",
                Tags=[{"Key": "app", "Value": "resilient-chat"}],
            )["Role"]["Arn"]
        )
        partition = arn.split(":")[1]
        iam.attach_role_policy(
            RoleName=name,
            PolicyArn=f"arn:{partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs",
        )
    return arn


def set_api_log_role(region: str, arn: str) -> bool:
    """False while API Gateway refuses the role because IAM has not propagated it yet."""
    try:
        client("apigateway", region).update_account(
            patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": arn}]
        )
    except ClientError as error:
        if "does not have required permissions" in error.response["Error"].get("Message", ""):
            return False
        raise AwsError(f"cannot set API Gateway's CloudWatch Logs role in {region}: {error}") from error
    except BotoCoreError as error:
        raise AwsError(f"cannot set API Gateway's CloudWatch Logs role in {region}: {error}") from error
    return True


def account_concurrency(region: str) -> int:
    """The account's Lambda concurrency quota in the region (GetAccountSettings)."""
    with failing_as(f"read Lambda's account settings in {region}"):
        limit = client("lambda", region).get_account_settings()["AccountLimit"]
    return int(limit["ConcurrentExecutions"])


# ---- make deploy and make delete: a stack in any state, outputs or not
# CloudFormation cannot update a stack in these states: it can only delete it.
ONLY_DELETABLE = frozenset(
    {"CREATE_FAILED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_FAILED", "ROLLBACK_COMPLETE", "DELETE_FAILED"}
)


def stack_status(stack_name: str, region: str) -> str | None:
    """The stack's status, or None when CloudFormation says the stack does not exist."""
    stack = describe_stack(stack_name, region)
    return None if stack is None else str(stack["StackStatus"])


def stack_resources(stack_name: str, region: str) -> dict[str, str]:
    """What the stack created, by logical id: each resource's physical id (its name or ARN)."""
    resources: dict[str, str] = {}
    with failing_as(f"list the resources of stack {stack_name} in {region}"):
        pages = client("cloudformation", region).get_paginator("list_stack_resources")
        for page in pages.paginate(StackName=stack_name):
            for summary in page["StackResourceSummaries"]:
                if summary.get("PhysicalResourceId"):
                    resources[summary["LogicalResourceId"]] = summary["PhysicalResourceId"]
    return resources


def remove_secret_replicas(secret_id: str, region: str) -> list[str] | None:
    """Delete the secret's replicas in other regions (a primary secret with replicas cannot be
    deleted); the regions removed, or None when there is no such secret."""
    secrets = client("secretsmanager", region)
    try:
        described = secrets.describe_secret(SecretId=secret_id)
        replicas = [status["Region"] for status in described.get("ReplicationStatus", [])]
        if replicas:
            secrets.remove_regions_from_replication(SecretId=secret_id, RemoveReplicaRegions=replicas)
    except secrets.exceptions.ResourceNotFoundException:
        return None
    except (ClientError, BotoCoreError) as error:
        raise AwsError(f"cannot remove the replicas of secret {secret_id} in {region}: {error}") from error
    return replicas

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


def stack_outputs(stack_name: str, region: str) -> dict[str, str] | None:
    """The stack's outputs, or None when CloudFormation says the stack does not exist."""
    try:
        (stack,) = client("cloudformation", region).describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        message = error.response["Error"].get("Message", "")
        if error.response["Error"].get("Code") == "ValidationError" and message.endswith("does not exist"):
            return None
        raise AwsError(f"cannot read stack {stack_name} in {region}: {error}") from error
    except BotoCoreError as error:
        raise AwsError(f"cannot read stack {stack_name} in {region}: {error}") from error
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

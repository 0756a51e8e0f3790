"""A region's faults (faults.py) as its clients see them: while its DynamoDB fails, every DynamoDB
and DynamoDB Streams call gets DynamoDB's own 500 InternalServerError after botocore's retries,
other services are untouched, and after heal the same clients work again. While its Lambda fails,
an invocation is throttled and the handler never runs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from localcloud.aws import faults
from localcloud.lambda_.runtime import LambdaRuntime, TooManyRequestsException
from stack_definition.template import load

REGION = "eu-west-2"
TABLE = "faults-test"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def session() -> Iterator[boto3.Session]:
    """A session of its own with the faults installed (the region's process uses boto3's default
    one); healed after each test."""
    session = boto3.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=REGION)
    faults.install(session)
    yield session
    faults.set_failing([])


def client(session: boto3.Session, service: str, endpoint: str) -> Any:
    retries = Config(retries={"mode": "standard", "total_max_attempts": 2})
    return session.client(service, endpoint_url=endpoint, config=retries)  # type: ignore[call-overload]


def test_while_dynamodb_fails_every_call_gets_its_internal_server_error_and_heal_restores_it(
    session: boto3.Session, endpoint: str
) -> None:
    # given a table, and clients made before the fault
    dynamodb = client(session, "dynamodb", endpoint)
    streams = client(session, "dynamodbstreams", endpoint)
    sqs = client(session, "sqs", endpoint)
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )

    # when DynamoDB fails
    assert faults.set_failing(["dynamodb"]) == ["dynamodb"]

    # then a write gets DynamoDB's 500 after botocore retried it, and writes nothing
    with pytest.raises(ClientError) as failed:
        dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "during"}})
    answer = failed.value.response
    assert answer["Error"]["Code"] == "InternalServerError"
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    # and so does DynamoDB Streams (what the stream's event source mapping reads)
    with pytest.raises(ClientError, match="InternalServerError"):
        streams.list_streams()
    # and another service is untouched
    assert sqs.create_queue(QueueName="faults-untouched")["QueueUrl"]

    # when it heals, the same clients work again
    assert faults.set_failing([]) == []
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": "after"}})
    items = dynamodb.scan(TableName=TABLE)["Items"]
    assert items == [{"pk": {"S": "after"}}]
    assert streams.list_streams()["Streams"]


def test_an_unknown_service_is_refused_and_names_the_ones_there_are() -> None:
    with pytest.raises(ValueError, match=r"dynamodb.*lambda"):
        faults.set_failing(["s3"])
    assert faults.current() == []


CALLS: list[dict[str, Any]] = []


def handler(event: dict[str, Any], _: Any) -> dict[str, Any]:
    """A function that records that it ran."""
    CALLS.append(event)
    return {"ran": True}


def test_while_lambda_fails_an_invocation_is_throttled_and_the_handler_never_runs() -> None:
    # given a region's runtime with one function
    template = load()
    function = next(iter(template.functions.values()))
    template.functions = {"Recorder": replace(function, handler="tests.localcloud.test_faults.handler")}
    runtime = LambdaRuntime(template, REGION, {}, asyncio.Event())
    CALLS.clear()

    # when its Lambda fails, an invocation is throttled and the handler does not run
    faults.set_failing(["lambda"])
    try:
        with pytest.raises(TooManyRequestsException, match="Rate Exceeded"):
            asyncio.run(runtime.invoke("Recorder", {"n": 1}))
    finally:
        faults.set_failing([])
    assert CALLS == []

    # and after heal it runs again
    assert asyncio.run(runtime.invoke("Recorder", {"n": 2})) == {"ran": True}
    assert CALLS == [{"n": 2}]

"""The replica-stream custom resource (the module template.yaml's function names) always answers
CloudFormation.

Its code is loaded as Lambda would load it (the template's `Code` directory and `Handler`), with
its response URL served on 127.0.0.1: whatever goes wrong, CloudFormation must get a FAILED answer
with the reason, never silence (which would hang the stack for the resource's ServiceTimeout).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.template.cfn import ROOT, Template

# moto's state is per process, shared with other tests' servers: a name of this module's own.
TABLE = "replica-stream-lookup-test-messages"


class ResponseUrl(HTTPServer):
    """The pre-signed S3 URL CloudFormation hands a custom resource: records each PUT."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Put)
        self.answers: list[dict[str, Any]] = []
        self.content_types: list[str | None] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/cfn-response?X-Amz-Signature=abc"


class _Put(BaseHTTPRequestHandler):
    server: ResponseUrl

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.answers.append(json.loads(body))
        self.server.content_types.append(self.headers.get("Content-Type"))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class FakeContext:
    log_stream_name = "2025/01/01/[$LATEST]0123456789abcdef"

    def __init__(self, remaining_ms: int = 900_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.fixture
def response_url() -> Iterator[ResponseUrl]:
    server = ResponseUrl()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _load_function(template: Template) -> types.ModuleType:
    """The module the template's function names, loaded afresh as Lambda loads it."""
    properties = template["Resources"]["ReplicaStreamLookupFunction"]["Properties"]
    module_name, _ = properties["Handler"].split(".")
    path = ROOT / properties["Code"] / f"{module_name}.py"
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _event(url: str, request_type: str = "Create", **properties: str) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "ResponseURL": url,
        "StackId": "arn:aws:cloudformation:eu-west-2:123456789012:stack/resilient-chat/guid",
        "RequestId": "request-1",
        "LogicalResourceId": "MessagesReplicaStream",
        "ResourceType": "Custom::ReplicaStream",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:…", **properties},
    }


def _only_answer(server: ResponseUrl) -> dict[str, Any]:
    (answer,) = server.answers
    assert answer["RequestId"] == "request-1"
    assert answer["LogicalResourceId"] == "MessagesReplicaStream"
    assert answer["StackId"].endswith("stack/resilient-chat/guid")
    return answer


def test_given_boto3_cannot_be_imported_when_created_then_cloudformation_gets_failed_with_the_reason(
    template: Template, response_url: ResponseUrl, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # `import boto3` raises ImportError
    function = _load_function(template)
    function.handler(_event(response_url.url, TableName=TABLE), FakeContext())
    answer = _only_answer(response_url)
    assert answer["Status"] == "FAILED"
    assert "boto3" in answer["Reason"]


def test_given_no_region_when_created_then_the_failure_before_the_loop_is_answered(
    template: Template, response_url: ResponseUrl, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    function = _load_function(template)
    function.handler(_event(response_url.url, TableName=TABLE), FakeContext())
    answer = _only_answer(response_url)
    assert answer["Status"] == "FAILED"
    assert "region" in answer["Reason"].lower()
    # CloudFormation's pre-signed URL is signed without a content type: sending one breaks it.
    assert response_url.content_types == [""]


def test_given_an_event_without_the_table_name_when_created_then_it_fails_with_the_reason(
    template: Template, response_url: ResponseUrl
) -> None:
    _load_function(template).handler(_event(response_url.url), FakeContext())
    answer = _only_answer(response_url)
    assert answer["Status"] == "FAILED"
    assert "TableName" in answer["Reason"]


def test_given_a_delete_then_it_succeeds_with_the_same_physical_id(
    template: Template, response_url: ResponseUrl
) -> None:
    event = {**_event(response_url.url, "Delete", TableName=TABLE), "PhysicalResourceId": "arn:stream"}
    _load_function(template).handler(event, FakeContext())
    answer = _only_answer(response_url)
    assert (answer["Status"], answer["PhysicalResourceId"]) == ("SUCCESS", "arn:stream")


def test_given_an_active_replica_with_a_stream_then_its_stream_arn_is_returned(
    template: Template, response_url: ResponseUrl, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        for name, value in {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_REGION": "eu-west-2",  # Lambda sets both
            "AWS_DEFAULT_REGION": "eu-west-2",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }.items():
            monkeypatch.setenv(name, value)
        stream_arn = boto3.client("dynamodb").create_table(
            TableName=TABLE,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]["LatestStreamArn"]
        _load_function(template).handler(_event(response_url.url, TableName=TABLE), FakeContext())
    finally:
        server.stop()
    answer = _only_answer(response_url)
    assert answer["Status"] == "SUCCESS"
    assert answer["Data"] == {"StreamArn": stream_arn}
    assert answer["PhysicalResourceId"] == stream_arn

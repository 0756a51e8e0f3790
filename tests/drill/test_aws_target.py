"""The drill's AWS side against moto: it changes the right thing and always puts it back."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from drill.__main__ import main
from drill.targets import AwsTarget


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        route53 = boto3.client("route53", region_name="us-east-1")
        checks = {}
        for region, api in (("us-east-1", "abc123"), ("eu-west-2", "def456")):
            checks[region] = route53.create_health_check(
                CallerReference=region,
                HealthCheckConfig={
                    "Type": "HTTPS",
                    "FullyQualifiedDomainName": f"{api}.execute-api.{region}.amazonaws.com",
                    "Port": 443,
                    "ResourcePath": "/health",
                    "RequestInterval": 10,
                    "FailureThreshold": 2,
                },
            )["HealthCheck"]["Id"]
        yield {"route53": route53, "checks": checks}


def inverted(aws: dict[str, Any], region: str) -> bool:
    config = aws["route53"].get_health_check(HealthCheckId=aws["checks"][region])["HealthCheck"]
    return bool(config["HealthCheckConfig"].get("Inverted", False))


def make_functions(region: str, names: list[str]) -> Any:
    iam = boto3.client("iam", region_name=region)
    role = iam.create_role(RoleName=f"role-{region}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(e, c): return e")
    client = boto3.client("lambda", region_name=region)
    for name in names:
        client.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler="index.handler",
            Code={"ZipFile": code.getvalue()},
        )
    return client


def test_invert_changes_only_the_regions_own_health_check_and_restores_it(aws: dict[str, Any]) -> None:
    target = AwsTarget(domain="example.com")
    target.take_out("eu-west-2", "invert")
    assert inverted(aws, "eu-west-2")
    assert not inverted(aws, "us-east-1")
    assert target.restore()
    assert not inverted(aws, "eu-west-2")


def test_a_check_inverted_before_the_drill_is_left_inverted(aws: dict[str, Any]) -> None:
    aws["route53"].update_health_check(HealthCheckId=aws["checks"]["us-east-1"], Inverted=True)
    target = AwsTarget(domain="example.com")
    target.take_out("us-east-1", "invert")
    assert target.restore()
    assert inverted(aws, "us-east-1")


def test_outage_sets_the_stacks_functions_to_zero_and_restores_their_concurrency(aws: dict[str, Any]) -> None:
    client = make_functions(
        "eu-west-2",
        ["resilient-chat-SendMessageFunction-X", "resilient-chat-FanoutFunction-Y", "someone-elses-function"],
    )
    client.put_function_concurrency(
        FunctionName="resilient-chat-FanoutFunction-Y", ReservedConcurrentExecutions=7
    )
    target = AwsTarget(domain="example.com")
    target.take_out("eu-west-2", "outage")
    for name in ("resilient-chat-SendMessageFunction-X", "resilient-chat-FanoutFunction-Y"):
        assert client.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 0
    assert "ReservedConcurrentExecutions" not in client.get_function_concurrency(
        FunctionName="someone-elses-function"
    )
    assert target.restore()
    assert "ReservedConcurrentExecutions" not in client.get_function_concurrency(
        FunctionName="resilient-chat-SendMessageFunction-X"
    )
    assert (
        client.get_function_concurrency(FunctionName="resilient-chat-FanoutFunction-Y")[
            "ReservedConcurrentExecutions"
        ]
        == 7
    )


def test_an_error_during_the_drill_still_restores(aws: dict[str, Any]) -> None:
    target = AwsTarget(domain="example.com")

    def drill_that_breaks() -> None:
        try:
            target.take_out("us-east-1", "invert")
            raise RuntimeError("the drill broke")
        finally:
            target.restore()

    with pytest.raises(RuntimeError, match="broke"):
        drill_that_breaks()
    assert not inverted(aws, "us-east-1")


def test_a_dry_run_prints_the_plan_and_changes_nothing(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--aws-domain", "example.com", "--region", "us-east-1", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert aws["checks"]["us-east-1"] in out
    assert "dry run: nothing changed" in out
    assert not inverted(aws, "us-east-1")

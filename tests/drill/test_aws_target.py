"""The drill's AWS side against moto-backed stacks: it acts on this stack's own resources only,
always puts them back, refuses what AWS cannot play, judges recovery from either region's side,
and keeps to a Route 53 budget."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from drill.__main__ import Drill, main, parse_args
from drill.aws import DENY_POLICY, ROUTE53_CALLS_PER_SECOND, AwsTarget
from tests.drill.fake_regions import FakeRegions, fake_regions

DOMAIN = "example.com"
ROUTE53_ACCOUNT_LIMIT = 5  # requests per second per account


def stack_template(region: str, urls: tuple[str, str]) -> str:
    """What the drill reads of template.yaml's stack: the functions, the health check, the outputs."""
    function = {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Runtime": "python3.12",
            "Handler": "index.handler",
            "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            "Code": {"ZipFile": "def handler(event, context): return event"},
        },
    }
    return json.dumps(
        {
            "Resources": {
                "Role": {
                    "Type": "AWS::IAM::Role",
                    "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}},
                },
                "SendMessageFunction": function,
                "FanoutFunction": function,
                "HealthCheck": {
                    "Type": "AWS::Route53::HealthCheck",
                    "Properties": {"HealthCheckConfig": health_check_config(f"ours.execute-api.{region}")},
                },
            },
            "Outputs": {
                "HealthCheckId": {"Value": {"Ref": "HealthCheck"}},
                "WebSocketUrl": {"Value": urls[0]},
                "HttpApiUrl": {"Value": urls[1]},
                "HttpCustomDomainUrl": {"Value": f"https://api.{DOMAIN}"},
                "WebSocketCustomDomainUrl": {"Value": f"wss://ws.{DOMAIN}"},
            },
        }
    )


def health_check_config(host: str) -> dict[str, Any]:
    return {
        "Type": "HTTPS",
        "FullyQualifiedDomainName": f"{host}.amazonaws.com",
        "Port": 443,
        "ResourcePath": "/health",
        "RequestInterval": 10,
        "FailureThreshold": 2,
    }


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def regions() -> Iterator[FakeRegions]:
    with fake_regions() as fake:
        yield fake


@pytest.fixture
def aws(credentials: None, regions: FakeRegions) -> Iterator[dict[str, Any]]:
    """Given another deployment in the same account, created first, and then our two stacks."""
    with mock_aws():
        route53 = boto3.client("route53", region_name="us-east-1")
        theirs: dict[str, Any] = {"checks": {}, "functions": {}}
        for region in regions.urls:
            theirs["checks"][region] = route53.create_health_check(
                CallerReference=f"theirs-{region}",
                HealthCheckConfig=health_check_config(f"theirs.execute-api.{region}"),
            )["HealthCheck"]["Id"]
            theirs["functions"][region] = make_function(region, "resilient-chat-staging-SendMessageFunction")
        ours: dict[str, Any] = {"checks": {}, "functions": {}}
        for region, urls in regions.urls.items():
            cloudformation = boto3.client("cloudformation", region_name=region)
            cloudformation.create_stack(
                StackName="resilient-chat",
                TemplateBody=stack_template(region, urls),
                Capabilities=["CAPABILITY_IAM"],
            )
            outputs = cloudformation.describe_stacks(StackName="resilient-chat")["Stacks"][0]["Outputs"]
            ours["checks"][region] = next(
                o["OutputValue"] for o in outputs if o["OutputKey"] == "HealthCheckId"
            )
            ours["functions"][region] = [
                r["PhysicalResourceId"]
                for r in cloudformation.list_stack_resources(StackName="resilient-chat")[
                    "StackResourceSummaries"
                ]
                if r["ResourceType"] == "AWS::Lambda::Function"
            ]
        yield {"route53": route53, "ours": ours, "theirs": theirs}


def make_function(region: str, name: str) -> str:
    iam = boto3.client("iam", region_name=region)
    role = iam.create_role(RoleName=f"role-{name}-{region}", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    boto3.client("lambda", region_name=region).create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},  # an empty zip archive
    )
    return name


def inverted(aws: dict[str, Any], check: str) -> bool:
    config = aws["route53"].get_health_check(HealthCheckId=check)["HealthCheck"]["HealthCheckConfig"]
    return bool(config.get("Inverted", False))


def concurrency(region: str, name: str) -> int | None:
    client = boto3.client("lambda", region_name=region)
    value: int | None = client.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")
    return value


def test_invert_flips_only_this_stacks_health_check_and_restores_it(aws: dict[str, Any]) -> None:
    target = AwsTarget(domain=DOMAIN)
    target.take_out("eu-west-2", "invert")
    assert inverted(aws, aws["ours"]["checks"]["eu-west-2"])
    assert not inverted(aws, aws["theirs"]["checks"]["eu-west-2"])
    assert not inverted(aws, aws["ours"]["checks"]["us-east-1"])
    assert target.restore()
    assert not inverted(aws, aws["ours"]["checks"]["eu-west-2"])


def test_a_check_inverted_before_the_drill_is_left_inverted(aws: dict[str, Any]) -> None:
    check = aws["ours"]["checks"]["us-east-1"]
    aws["route53"].update_health_check(HealthCheckId=check, Inverted=True)
    target = AwsTarget(domain=DOMAIN)
    target.take_out("us-east-1", "invert")
    assert target.restore()
    assert inverted(aws, check)


@pytest.mark.parametrize("mode", ["lambda", "outage"])
def test_a_lambda_fault_sets_only_this_stacks_functions_to_zero_and_restores_them(
    aws: dict[str, Any], mode: str
) -> None:
    ours = aws["ours"]["functions"]["eu-west-2"]
    boto3.client("lambda", region_name="eu-west-2").put_function_concurrency(
        FunctionName=ours[0], ReservedConcurrentExecutions=7
    )
    target = AwsTarget(domain=DOMAIN)
    target.take_out("eu-west-2", mode)
    assert [concurrency("eu-west-2", name) for name in ours] == [0, 0]
    assert concurrency("eu-west-2", aws["theirs"]["functions"]["eu-west-2"]) is None
    assert target.restore()
    assert [concurrency("eu-west-2", name) for name in ours] == [7, None]


def inline_policies(role: str) -> list[str]:
    names: list[str] = boto3.client("iam").list_role_policies(RoleName=role)["PolicyNames"]
    return names


def our_roles(region: str) -> list[str]:
    resources = boto3.client("cloudformation", region_name=region).list_stack_resources(
        StackName="resilient-chat"
    )["StackResourceSummaries"]
    return [r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::IAM::Role"]


def test_a_dynamodb_fault_denies_dynamodb_to_this_stacks_roles_in_that_region_until_restored(
    aws: dict[str, Any],
) -> None:
    (role,) = our_roles("us-east-1")
    (elsewhere,) = our_roles("eu-west-2")
    theirs = [r["RoleName"] for r in boto3.client("iam").list_roles()["Roles"] if r["RoleName"] != role]
    target = AwsTarget(domain=DOMAIN, hold=60)
    target.take_out("us-east-1", "dynamodb")

    document = boto3.client("iam").get_role_policy(RoleName=role, PolicyName=DENY_POLICY)["PolicyDocument"]
    (statement,) = document["Statement"]
    assert (statement["Effect"], statement["Action"], statement["Resource"]) == ("Deny", "dynamodb:*", "*")
    expires = statement["Condition"]["DateLessThan"]["aws:CurrentTime"]
    assert expires > time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))  # outlives the hold
    assert all(inline_policies(other) == [] for other in theirs)
    assert inline_policies(elsewhere) == []
    assert target.restore()
    assert inline_policies(role) == []


def test_a_kill_is_refused_in_aws_in_one_line_before_anything_changes(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--aws-domain", DOMAIN, "--mode", "kill"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("drill: --mode kill has no AWS counterpart")
    assert all(concurrency("us-east-1", name) is None for name in aws["ours"]["functions"]["us-east-1"])


def test_an_error_during_the_drill_still_restores(aws: dict[str, Any]) -> None:
    target = AwsTarget(domain=DOMAIN)

    def drill_that_breaks() -> None:
        try:
            target.take_out("us-east-1", "invert")
            raise RuntimeError("the drill broke")
        finally:
            target.restore()

    with pytest.raises(RuntimeError, match="broke"):
        drill_that_breaks()
    assert not inverted(aws, aws["ours"]["checks"]["us-east-1"])


def test_the_synthetic_clients_fall_back_to_each_regions_own_endpoints(
    aws: dict[str, Any], regions: FakeRegions
) -> None:
    assert AwsTarget(domain=DOMAIN).direct_endpoints() == regions.urls


def test_a_dry_run_prints_this_stacks_plan_and_changes_nothing(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--aws-domain", DOMAIN, "--region", "us-east-1", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert aws["ours"]["checks"]["us-east-1"] in out
    assert aws["theirs"]["checks"]["us-east-1"] not in out
    assert "dry run: nothing changed" in out
    assert not inverted(aws, aws["ours"]["checks"]["us-east-1"])


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))


@pytest.mark.parametrize(
    ("mode", "fault", "removal"),
    [
        ("invert", "update-health-check --health-check-id", "--no-inverted"),
        ("dynamodb", f"put-role-policy --policy-name {DENY_POLICY}", "delete-role-policy"),
        ("lambda", "put-function-concurrency --reserved-concurrent-executions 0", "previous setting"),
        ("outage", "put-function-concurrency --reserved-concurrent-executions 0", "previous setting"),
    ],
)
def test_a_dry_run_without_credentials_prints_the_fault_and_how_it_is_removed(
    no_credentials: None, capsys: pytest.CaptureFixture[str], mode: str, fault: str, removal: str
) -> None:
    assert main(["--aws-domain", DOMAIN, "--mode", mode, "--dry-run"]) == 0
    captured = capsys.readouterr()
    steps = captured.out.split("\n  - ")
    assert any(fault in step for step in steps)
    assert any(step.startswith("removed by:") and removal in step for step in steps)
    assert "dry run: nothing changed" in captured.out
    assert "no AWS credentials" in captured.out
    assert captured.err == ""


def test_a_dry_run_of_a_kill_without_credentials_is_refused_too(
    no_credentials: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--aws-domain", DOMAIN, "--mode", "kill", "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("drill: --mode kill has no AWS counterpart")
    assert captured.out == ""


def test_a_real_run_without_credentials_says_so_in_one_line(
    no_credentials: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--aws-domain", DOMAIN]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("drill: no AWS credentials")


def test_a_drill_of_another_domain_is_refused_before_it_changes_anything(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--aws-domain", "other.example.org", "--clients", "1"]) == 2
    assert "not api.other.example.org" in capsys.readouterr().err
    assert not inverted(aws, aws["ours"]["checks"]["us-east-1"])


def test_throttled_route53_calls_are_retried_with_backoff(aws: dict[str, Any]) -> None:
    target = AwsTarget(domain=DOMAIN)
    attempts: list[float] = []

    def throttle_twice(request: Any, **_: Any) -> AWSResponse | None:
        attempts.append(time.monotonic())
        if len(attempts) > 2:
            return None
        body = (
            b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
            b"<Message>Rate exceeded</Message></Error><RequestId>1</RequestId></ErrorResponse>"
        )
        return AWSResponse(request.url, 400, {}, _Raw(body))

    target.health_check_id("us-east-1")  # read the stacks first: only the status call is throttled
    target.route53.meta.events.register_first("before-send.route53.GetHealthCheckStatus", throttle_twice)
    assert target.healthy("us-east-1") is True
    assert len(attempts) == 3


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


def refused_url() -> str:
    """A loopback port nobody listens on: a routed name whose DNS answer is a dead region."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"ws://127.0.0.1:{probe.getsockname()[1]}/"


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("drilled", "operator_near"),
    [("us-east-1", "eu-west-2"), ("us-east-1", "us-east-1"), ("eu-west-2", "us-east-1")],
)
def test_a_drill_recovers_whichever_region_the_operator_is_near_within_the_route53_budget(
    aws: dict[str, Any],
    regions: FakeRegions,
    drilled: str,
    operator_near: str,
    tmp_path: Path,
) -> None:
    """Given the routed names answer from the region nearest the operator, and the routed
    WebSocket name refuses connections, when a region is drilled, then the clients chat through
    each region's own endpoint, the drill recovers and passes, and Route 53 is called at most at
    the drill's budget, far under the account's limit."""
    target = AwsTarget(domain=DOMAIN)
    target.http_url = lambda location: regions.urls[operator_near][1]  # type: ignore[method-assign]
    target.websocket_url = lambda location: refused_url()  # type: ignore[method-assign]
    route53_calls: list[float] = []
    target.route53.meta.events.register(
        "request-created.route53", lambda **_: route53_calls.append(time.monotonic())
    )
    args = parse_args(
        [
            *("--aws-domain", DOMAIN, "--region", drilled, "--hold", "1", "--warmup", "0.5"),
            *("--cooldown", "0.5", "--clients", "2", "--rate", "2", "--probe-interval", "0.1"),
            *("--settle", "5", "--output", str(tmp_path / "report.json")),
        ]
    )
    target.prepare()
    report = asyncio.run(Drill(args, target).run())

    assert report["verdict"] == "PASS", report["failures"]
    assert report["restored"] is True
    assert report["recover_seconds"] is not None
    assert report["sent"] > 0
    assert report["lost"] == 0
    assert all(set(c["regions"]) <= set(regions.urls) and c["regions"] for c in report["clients"])
    assert not inverted(aws, aws["ours"]["checks"][drilled])
    assert len(route53_calls) >= 3
    per_second = [sum(start <= t < start + 1 for t in route53_calls) for start in route53_calls]
    assert max(per_second) <= ROUTE53_CALLS_PER_SECOND + 1 < ROUTE53_ACCOUNT_LIMIT

"""A first deploy that cannot get stuck: the table a failed create made can be rolled back, a stack
CloudFormation can only delete is named with what to do, API Gateway's logging role is an account
setting made before the stacks (never raced, never replaced), and the page workers' cap leaves the
account's Lambda concurrency to $connect and the authorizer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from scripts import api_logging, aws
from scripts.api_logging import ROLE_NAME, ensure_api_log_role
from scripts.aws import AwsError
from scripts.deploy import AwsCloud, DeployError, Settings, check_concurrency, deploy
from scripts.dry_run import DryRunCloud
from tests.template.cfn import Template, resources_of_type, stack_in

PRIMARY, SECONDARY = "us-east-1", "eu-west-2"


def _protection(template: Template, overrides: dict[str, str]) -> list[Any]:
    stack = stack_in(template, PRIMARY, overrides)
    replicas = stack.resources()["MessagesTable"]["Properties"]["Replicas"]
    return [stack.resolve(replica["DeletionProtectionEnabled"]) for replica in replicas]


def test_given_the_primarys_first_create_then_its_table_is_unprotected_so_a_failure_can_roll_it_back(
    template: Template, samconfig: dict[str, Any]
) -> None:
    assert _protection(template, {"MessagesDeletionProtection": "false"}) == [False, False]
    # Every later deploy, and a deploy by hand that does not say otherwise, protects every replica.
    assert _protection(template, {"MessagesDeletionProtection": "true"}) == [True, True]
    assert _protection(template, {}) == [True, True]
    # A failed create is deleted (CloudFormation can then delete the unprotected table): retryable.
    for env in ("default", PRIMARY, SECONDARY):
        assert samconfig[env]["deploy"]["parameters"]["on_failure"] == "DELETE", env


@pytest.mark.parametrize("status", sorted(aws.ONLY_DELETABLE))
def test_given_a_stack_cloudformation_can_only_delete_when_deploying_then_it_stops_and_says_make_delete(
    monkeypatch: pytest.MonkeyPatch, status: str
) -> None:
    monkeypatch.setattr(aws, "describe_stack", lambda name, region: {"StackStatus": status})
    with pytest.raises(DeployError, match=rf"is {status}.*make delete.*then make deploy"):
        AwsCloud("sam", "resilient-chat").stack_outputs(PRIMARY)


@pytest.mark.parametrize(("status", "outputs"), [("REVIEW_IN_PROGRESS", None), ("UPDATE_COMPLETE", {})])
def test_given_a_stack_that_can_be_deployed_then_its_outputs_are_read(
    monkeypatch: pytest.MonkeyPatch, status: str, outputs: dict[str, str] | None
) -> None:
    monkeypatch.setattr(aws, "describe_stack", lambda name, region: {"StackStatus": status})
    assert AwsCloud("sam", "resilient-chat").stack_outputs(PRIMARY) == outputs


def test_given_the_template_then_no_stack_sets_api_gateways_account_wide_logging_role(
    template: Template,
) -> None:
    assert not resources_of_type(template, "AWS::ApiGateway::Account")
    # API Gateway may assume a role of the stack only to call an integration (the heartbeat's
    # DynamoDB Query), never to push its logs: that role is the account's, set before the stacks.
    roles = resources_of_type(template, "AWS::IAM::Role").values()
    managed = [str(role["Properties"].get("ManagedPolicyArns", [])) for role in roles]
    assert not [arns for arns in managed if "AmazonAPIGatewayPushToCloudWatchLogs" in arns]


@dataclass
class FakeAccount:
    """API Gateway's account settings per region and IAM's roles, as ensure_api_log_role sees them."""

    settings: dict[str, str] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)
    refusals: int = 0  # UpdateAccount calls refused while IAM propagates a new role
    calls: list[str] = field(default_factory=list)

    def api_log_role(self, region: str) -> str | None:
        return self.settings.get(region)

    def role_arn(self, name: str) -> str | None:
        return self.roles.get(name)

    def create_api_log_role(self, name: str) -> str:
        self.calls.append(f"CreateRole {name}")
        self.roles[name] = f"arn:aws:iam::123456789012:role/{name}"
        return self.roles[name]

    def set_api_log_role(self, region: str, arn: str) -> bool:
        self.calls.append(f"UpdateAccount {region}")
        if self.refusals:
            self.refusals -= 1
            return False
        self.settings[region] = arn
        return True


def test_given_an_account_whose_api_gateway_already_logs_with_a_role_then_that_role_is_kept() -> None:
    theirs = "arn:aws:iam::123456789012:role/their-logging-role"
    account = FakeAccount(settings={PRIMARY: theirs}, roles={"their-logging-role": theirs})
    ensure_api_log_role(account, (PRIMARY, SECONDARY), wait=lambda seconds: None, out=lambda line: None)
    assert account.settings[PRIMARY] == theirs
    ours = f"arn:aws:iam::123456789012:role/{ROLE_NAME}"
    assert account.settings[SECONDARY] == ours
    assert account.calls == [f"CreateRole {ROLE_NAME}", f"UpdateAccount {SECONDARY}"]


def test_given_a_role_iam_has_not_propagated_yet_then_setting_it_is_retried_until_api_gateway_accepts() -> (
    None
):
    account = FakeAccount(refusals=2)
    waits: list[float] = []
    ensure_api_log_role(account, (PRIMARY, SECONDARY), wait=waits.append, out=lambda line: None)
    ours = f"arn:aws:iam::123456789012:role/{ROLE_NAME}"
    assert account.settings == {PRIMARY: ours, SECONDARY: ours}
    assert account.calls.count(f"CreateRole {ROLE_NAME}") == 1  # one role, whatever the regions
    assert waits == [api_logging.RETRY_SECONDS] * 2


def test_given_a_deleted_role_or_one_never_accepted_then_it_is_replaced_or_fails_loudly() -> None:
    gone = FakeAccount(settings={PRIMARY: "arn:aws:iam::123456789012:role/deleted-long-ago"})
    ensure_api_log_role(gone, (PRIMARY,), wait=lambda seconds: None, out=lambda line: None)
    assert gone.settings[PRIMARY].endswith(f"role/{ROLE_NAME}")
    never = FakeAccount(refusals=10_000)
    with pytest.raises(AwsError, match="still refuses role"):
        ensure_api_log_role(never, (PRIMARY,), wait=lambda seconds: None, out=lambda line: None)


def test_given_api_gateway_and_iam_then_the_real_adapter_creates_the_role_once_and_sets_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real calls against a moto server on 127.0.0.1."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        for name, value in {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",  # AWS's managed policies, as IAM has them
        }.items():
            monkeypatch.setenv(name, value)
        aws.client.cache_clear()
        # moto loads the managed policies when its IAM backend starts: start it again, with them.
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.iam.models import iam_backends

        iam_backends[DEFAULT_ACCOUNT_ID]["aws"].reset()
        cloud = AwsCloud("sam", "resilient-chat")
        assert cloud.role_arn(ROLE_NAME) is None
        ensure_api_log_role(cloud, (PRIMARY, SECONDARY), out=lambda line: None)
        arn = cloud.role_arn(ROLE_NAME)
        assert arn is not None
        assert arn.endswith(f":role/{ROLE_NAME}")
        assert [cloud.api_log_role(region) for region in (PRIMARY, SECONDARY)] == [arn, arn]
        policies = aws.client("iam", PRIMARY).list_attached_role_policies(RoleName=ROLE_NAME)
        assert [p["PolicyName"] for p in policies["AttachedPolicies"]] == [
            "AmazonAPIGatewayPushToCloudWatchLogs"
        ]
    finally:
        aws.client.cache_clear()
        server.stop()


def test_given_the_page_workers_then_their_cap_is_a_parameter_that_a_new_accounts_quota_can_hold(
    template: Template,
) -> None:
    mapping = template["Resources"]["FanoutWorkerMapping"]["Properties"]
    assert mapping["ScalingConfig"]["MaximumConcurrency"] == {"Ref": "PageWorkerConcurrency"}
    parameter = template["Parameters"]["PageWorkerConcurrency"]
    assert (parameter["MinValue"], parameter["MaxValue"]) == (2, 1000)  # Lambda's bounds for SQS
    assert parameter["Default"] <= 1000 * 0.02  # at most 2% of the standard quota of 1,000
    # A cap, not a reservation: reserving concurrency needs 100 unreserved left in the account,
    # which a new account's reduced quota does not have, and would fail the create.
    functions = resources_of_type(template, "AWS::Serverless::Function").values()
    assert not [f for f in functions if "ReservedConcurrentExecutions" in f["Properties"]]


class SmallAccount(DryRunCloud):
    def account_concurrency(self, region: str) -> int:
        super().account_concurrency(region)
        return 10


def test_given_an_account_with_a_reduced_lambda_quota_when_deploying_then_the_workers_cap_must_fit_it() -> (
    None
):
    lines: list[str] = []
    settings = Settings.from_environment({})
    with pytest.raises(
        DeployError, match=r"concurrency in us-east-1 is 10.*PAGE_WORKER_CONCURRENCY to at most 2"
    ):
        deploy(SmallAccount("resilient-chat", out=lines.append), settings)
    assert not [line for line in lines if line.startswith("sam deploy")], "stopped before any stack"
    small = Settings.from_environment({"PAGE_WORKER_CONCURRENCY": "2"})
    assert small.parameters["PageWorkerConcurrency"] == "2"
    check_concurrency(SmallAccount("resilient-chat", out=lines.append), small)

"""The drill against a real deployment: the two regional stacks of one name. Everything it touches
comes from those stacks' outputs and resources, never from a search of the account; every fault it
injects is recorded with its undo before it is made, and undone at the end, even on Ctrl-C or an
error.

The faults, by what fails (docs/drill.md compares the ways to play each):
- `lambda` (and its old name `outage`): reserved concurrency 0 on every function of the region's
  stack, each put back to its previous setting;
- `dynamodb`: an explicit Deny of `dynamodb:*` as an inline policy on every IAM role of the
  region's stack (the functions' roles, so their event source mappings too, and the heartbeat's
  service-integration role), which also expires by itself (`aws:CurrentTime`) in case the drill
  cannot remove it; removed with `DeleteRolePolicy`;
- `kill` has no AWS counterpart (nothing stops a region's API Gateway): refused;
- `invert`: the health check's `Inverted` flag."""

from __future__ import annotations

import datetime
import json
import threading
import time
import urllib.error
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from drill.targets import (
    Change,
    TargetError,
    answers_as,
    get_json,
    invert_health_check,
    undo_all,
)
from stack_definition.routing import ROUTE53_REGION
from stack_definition.template import load_cached, region_names

ROUTE53_HEALTHY_SHARE = 0.18  # Route 53 counts a check healthy when over 18% of checkers say so
# Route 53's API allows 5 requests per second per account; the drill keeps well under it, so
# that whatever else runs in the account (deploys, other tools) is not throttled either.
ROUTE53_CALLS_PER_SECOND = 2.0
DENY_POLICY = "drill-deny-dynamodb"  # the inline policy's name on each role
DENY_OUTLIVES_HOLD = 900.0  # the deny expires by itself this long after the planned hold
KILL_REFUSED = (
    "--mode kill has no AWS counterpart: nothing can stop a region's API Gateway; drill a gray "
    "failure with --mode lambda or --mode dynamodb"
)


class CallBudget:
    """At most `per_second` calls, evenly spaced and shared by every thread of the drill. Hooked on
    botocore's `request-created`, so it paces every attempt, retries included."""

    def __init__(self, per_second: float) -> None:
        self.spacing = 1.0 / per_second
        self.next_at = 0.0
        self.calls = 0
        self._lock = threading.Lock()

    def wait(self, **_: Any) -> None:
        with self._lock:
            now = time.monotonic()
            at = max(now, self.next_at)
            self.next_at = at + self.spacing
            self.calls += 1
        time.sleep(at - now)


@dataclass
class AwsTarget:
    """A real deployment: the two regional stacks named `stack_name`. Everything the drill touches
    (health check, functions, each region's own endpoints) comes from those stacks' outputs and
    resources, never from a search of the account, which may hold other deployments."""

    domain: str
    stack_name: str = field(default_factory=lambda: load_cached().stack_name)
    name: str = "aws"
    session: Any = None
    route53_calls_per_second: float = ROUTE53_CALLS_PER_SECOND
    hold: float = 15.0  # the planned hold, seconds: the deny's own expiry is counted from it
    changes: list[Change] = field(default_factory=list)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    _inverted: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.session = self.session or boto3.session.Session()
        # Throttling is retried with backoff by botocore's standard mode; the budget keeps us
        # from being throttled in the first place.
        self.route53 = self.session.client(
            "route53",
            region_name=ROUTE53_REGION,
            config=Config(retries={"mode": "standard", "max_attempts": 8}),
        )
        self.route53_budget = CallBudget(self.route53_calls_per_second)
        self.route53.meta.events.register("request-created.route53", self.route53_budget.wait)

    def capacity(self) -> list[dict[str, Any]] | None:
        """Unknown: AWS scales the functions; its limits are the account's quotas."""
        return None

    def locations(self) -> dict[str, str]:
        """Labels only: in AWS every synthetic client sits where the operator does."""
        return {region: region for region in region_names()}

    def prepare(self) -> None:
        """Read both stacks' outputs; say in one line why that is not possible."""
        if self.outputs:
            return
        if self.session.get_credentials() is None:
            raise TargetError(
                "no AWS credentials: set AWS_PROFILE (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) "
                "for the account that holds the stacks"
            )
        outputs = {region: self._stack_outputs(region) for region in region_names()}
        for region, values in outputs.items():
            routed = values.get("HttpCustomDomainUrl")
            if routed != f"https://api.{self.domain}":
                raise TargetError(
                    f"stack {self.stack_name} in {region} serves {routed or 'no domain'}, "
                    f"not api.{self.domain}: check --aws-domain and --stack-name"
                )
        self.outputs = outputs

    def _stack_outputs(self, region: str) -> dict[str, str]:
        client = self.session.client("cloudformation", region_name=region)
        try:
            stack = client.describe_stacks(StackName=self.stack_name)["Stacks"][0]
        except (ClientError, BotoCoreError) as error:
            raise TargetError(f"cannot read stack {self.stack_name} in {region}: {error}") from error
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    def direct_endpoints(self) -> dict[str, tuple[str, str]]:
        """Each region's own WebSocket and HTTP URLs (the stacks' outputs), as the page has them."""
        self.prepare()
        return {region: (o["WebSocketUrl"], o["HttpApiUrl"]) for region, o in self.outputs.items()}

    def health_check_id(self, region: str) -> str:
        """This stack's own health check of the region (template.yaml's HealthCheckId output)."""
        self.prepare()
        return self.outputs[region]["HealthCheckId"]

    def _resources(self, region: str, kind: str) -> list[str]:
        """The physical names of this region's stack's resources of one type."""
        client = self.session.client("cloudformation", region_name=region)
        try:
            return [
                resource["PhysicalResourceId"]
                for page in client.get_paginator("list_stack_resources").paginate(StackName=self.stack_name)
                for resource in page["StackResourceSummaries"]
                if resource["ResourceType"] == kind
            ]
        except (ClientError, BotoCoreError) as error:
            raise TargetError(
                f"cannot list stack {self.stack_name}'s resources in {region}: {error}"
            ) from error

    def functions(self, region: str) -> list[str]:
        """The Lambda functions of this region's stack."""
        return self._resources(region, "AWS::Lambda::Function")

    def roles(self, region: str) -> list[str]:
        """The IAM roles of this region's stack: the functions' and the service integrations'."""
        return self._resources(region, "AWS::IAM::Role")

    def plan(self, region: str, mode: str) -> list[str]:
        if mode == "kill":
            raise TargetError(KILL_REFUSED)
        known = self.session.get_credentials() is not None
        stack = f"stack {self.stack_name} in {region}"
        if mode == "invert":
            check = self.health_check_id(region) if known else f"{stack}'s HealthCheckId output"
            steps = [
                f"route53 update-health-check --health-check-id {check} --inverted",
                "removed by: route53 update-health-check --no-inverted (or as it was before)",
            ]
        elif mode == "dynamodb":
            roles = ", ".join(self.roles(region)) if known else f"every AWS::IAM::Role of {stack}"
            steps = [
                f"iam put-role-policy --policy-name {DENY_POLICY} on {roles}: Deny dynamodb:* on *, "
                f"until {self._deny_until()} (aws:CurrentTime): every DynamoDB call of the region's "
                "functions, their stream mappings and the heartbeat's integration is refused",
                f"removed by: iam delete-role-policy --policy-name {DENY_POLICY} on each role (and it "
                "expires by itself at that time if the drill cannot remove it)",
            ]
        else:
            names = ", ".join(self.functions(region)) if known else f"every AWS::Lambda::Function of {stack}"
            steps = [
                f"lambda put-function-concurrency --reserved-concurrent-executions 0 on {names} "
                f"(region {region}): every invocation is throttled",
                "removed by: lambda put-function-concurrency back to each function's previous setting, "
                "or delete-function-concurrency where it had none",
            ]
        if not known:
            steps.append("(no AWS credentials here: the ids are read from the stacks when the drill runs)")
        return steps

    def _deny_until(self) -> str:
        until = time.time() + self.hold + DENY_OUTLIVES_HOLD
        return datetime.datetime.fromtimestamp(until, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def take_out(self, region: str, mode: str) -> None:
        if mode == "kill":
            raise TargetError(KILL_REFUSED)
        if mode == "invert":
            check = self.health_check_id(region)
            self._inverted.pop(check, None)
            invert_health_check(self.route53, check, self.changes)
        elif mode == "dynamodb":
            self._deny_dynamodb(region)
        else:
            self._throttle_functions(region)

    def _deny_dynamodb(self, region: str) -> None:
        iam = self.session.client("iam", region_name=region)
        policy = json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "DrillDynamoDBOutage",
                        "Effect": "Deny",
                        "Action": "dynamodb:*",
                        "Resource": "*",
                        "Condition": {"DateLessThan": {"aws:CurrentTime": self._deny_until()}},
                    }
                ],
            }
        )
        for role in self.roles(region):

            def undo(role: str = role) -> None:
                iam.delete_role_policy(RoleName=role, PolicyName=DENY_POLICY)

            self.changes.append(Change(f"{role}: {DENY_POLICY}", undo))
            iam.put_role_policy(RoleName=role, PolicyName=DENY_POLICY, PolicyDocument=policy)

    def _throttle_functions(self, region: str) -> None:
        client = self.session.client("lambda", region_name=region)
        for name in self.functions(region):
            prior = client.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions")

            def undo(name: str = name, prior: int | None = prior) -> None:
                if prior is None:
                    client.delete_function_concurrency(FunctionName=name)
                else:
                    client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=prior)

            self.changes.append(Change(f"{name} reserved concurrency 0 (was {prior})", undo))
            client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)

    def restore(self) -> bool:
        self._inverted.clear()
        return undo_all(self.changes)

    def healthy(self, region: str) -> bool:
        """One GetHealthCheckStatus per probe; the Inverted flag is read again only after the drill
        changed it."""
        check = self.health_check_id(region)
        observations = self.route53.get_health_check_status(HealthCheckId=check)["HealthCheckObservations"]
        if check not in self._inverted:
            config = self.route53.get_health_check(HealthCheckId=check)["HealthCheck"]["HealthCheckConfig"]
            self._inverted[check] = bool(config.get("Inverted", False))
        good = sum(o["StatusReport"]["Status"].startswith("Success") for o in observations)
        raw = bool(observations) and good / len(observations) > ROUTE53_HEALTHY_SHARE
        return raw != self._inverted[check]

    def serves(self, region: str) -> bool:
        return answers_as(f"{self.direct_endpoints()[region][1]}/health", region)

    def routed_region(self, location: str) -> str | None:
        """Where the routed name sends this machine: DNS answers for where the operator sits."""
        try:
            return str(get_json(f"{self.http_url(location)}/health", timeout=5)["region"])
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            return None

    def websocket_url(self, location: str) -> str:
        return f"wss://ws.{self.domain}"

    def http_url(self, location: str) -> str:
        return f"https://api.{self.domain}"

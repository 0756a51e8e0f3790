"""Where the drill acts: the local stack or a real deployment. Both take a region out, restore
exactly what they changed, and report health and routing as their Route 53 sees them."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Protocol

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from drill import capacity
from localcloud.latency_routing import LATENCY_MS, nearest
from localcloud.provision import ROUTE53_REGION
from localcloud.state import StateDir
from localcloud.template import load

TEMPLATE = load()
REGIONS = tuple(TEMPLATE.regions)
STACK_NAME = TEMPLATE.stack_name
ROUTE53_HEALTHY_SHARE = 0.18  # Route 53 counts a check healthy when over 18% of checkers say so
# Route 53's API allows 5 requests per second per account; the drill keeps well under it, so
# that whatever else runs in the account (deploys, other tools) is not throttled either.
ROUTE53_CALLS_PER_SECOND = 2.0


class TargetError(Exception):
    """The drill cannot act on its target; the message says why, in one line."""


class Target(Protocol):
    name: str

    def prepare(self) -> None: ...
    def capacity(self) -> list[dict[str, Any]] | None: ...
    def plan(self, region: str, mode: str) -> list[str]: ...
    def take_out(self, region: str, mode: str) -> None: ...
    def restore(self) -> bool: ...
    def healthy(self, region: str) -> bool: ...
    def serves(self, region: str) -> bool: ...
    def routed_region(self, location: str) -> str | None: ...
    def websocket_url(self, location: str) -> str: ...
    def http_url(self, location: str) -> str: ...
    def locations(self) -> dict[str, str]: ...
    def direct_endpoints(self) -> dict[str, tuple[str, str]]: ...


def _get_json(url: str, timeout: float = 5.0) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own endpoints
        body: dict[str, Any] = json.loads(response.read())
        return body


def _answers_as(health_url: str, region: str) -> bool:
    """Whether a region's own /health answers 200 from that region."""
    try:
        return _get_json(health_url, timeout=2).get("region") == region
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass
class Change:
    """One thing the drill changed, with what restores it."""

    description: str
    undo: Any  # a callable: () -> None
    done: bool = False


@dataclass
class LocalTarget:
    """The local stack, found through the `stack.json` of its state directory."""

    state: StateDir
    name: str = "local"
    info: dict[str, Any] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)

    def __post_init__(self) -> None:
        try:
            self.info = self.state.read()
        except (OSError, ValueError) as error:
            raise TargetError(
                f"no local stack: cannot read {self.state.stack_file} (start one with `make local`): {error}"
            ) from error
        self.route53 = boto3.client(
            "route53",
            endpoint_url=self.info["awsEndpointUrl"],
            region_name=ROUTE53_REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - moto ignores credentials
        )

    def prepare(self) -> None:
        """Nothing to look up: stack.json has it all."""

    def capacity(self) -> list[dict[str, Any]] | None:
        """What this machine's local stack serves, if `make bench ARGS=capacity` measured it."""
        return capacity.measured()

    def locations(self) -> dict[str, str]:
        """A client location next to each region: the simulated city with the shortest round trip."""
        cities = [location for location in LATENCY_MS if location not in REGIONS]
        return {
            region: min((c for c in cities if nearest(c) == region), key=lambda c: LATENCY_MS[c][region])
            for region in REGIONS
        }

    def direct_endpoints(self) -> dict[str, tuple[str, str]]:
        """Each region's own WebSocket and HTTP URLs, for clients whose routed name fails them."""
        return {region: (e["websocketUrl"], e["httpUrl"]) for region, e in self.info["regions"].items()}

    def _check(self, region: str) -> str:
        check: str = self.info["regions"][region]["healthCheckId"]
        return check

    def plan(self, region: str, mode: str) -> list[str]:
        if mode == "invert":
            current = self.route53.get_health_check(HealthCheckId=self._check(region))
            inverted = current["HealthCheck"]["HealthCheckConfig"].get("Inverted", False)
            return [
                f"route53 update-health-check --health-check-id {self._check(region)} --inverted "
                f"(now inverted={inverted}) at {self.info['awsEndpointUrl']}"
            ]
        return [
            f"stop {region}'s gateway process (pid {self.info['regions'][region]['pid']}) through "
            f"{self.info['frontDoorUrl']}/_local/regions/{region}, then start it again"
        ]

    def take_out(self, region: str, mode: str) -> None:
        if mode == "invert":
            invert_health_check(self.route53, self._check(region), self.changes)
        else:
            self.changes.append(Change(f"{region} process stopped", lambda: self._control(region, "start")))
            self._control(region, "stop")

    def _control(self, region: str, action: str) -> None:
        request = urllib.request.Request(  # noqa: S310 - our own endpoint
            f"{self.info['frontDoorUrl']}/_local/regions/{region}",
            data=json.dumps({"action": action}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            response.read()

    def restore(self) -> bool:
        return _undo_all(self.changes)

    def healthy(self, region: str) -> bool:
        status = _get_json(self.info["statusUrl"])
        return bool(status["regions"][region]["healthy"])

    def serves(self, region: str) -> bool:
        return _answers_as(f"{self.info['regions'][region]['httpUrl']}/health", region)

    def routed_region(self, location: str) -> str | None:
        """Where a new connection from `location` lands now (a fresh request through the routed name)."""
        try:
            return str(
                _get_json(f"{self.http_url(location)}/health?location={location}", timeout=2)["region"]
            )
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            return None

    def websocket_url(self, location: str) -> str:
        return str(self.info["frontDoorWebsocketUrl"]) + f"/?location={location}"

    def http_url(self, location: str) -> str:
        return str(self.info["frontDoorUrl"])


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
    stack_name: str = STACK_NAME
    name: str = "aws"
    session: Any = None
    route53_calls_per_second: float = ROUTE53_CALLS_PER_SECOND
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
        return {region: region for region in REGIONS}

    def prepare(self) -> None:
        """Read both stacks' outputs; say in one line why that is not possible."""
        if self.outputs:
            return
        if self.session.get_credentials() is None:
            raise TargetError(
                "no AWS credentials: set AWS_PROFILE (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) "
                "for the account that holds the stacks"
            )
        outputs = {region: self._stack_outputs(region) for region in REGIONS}
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

    def functions(self, region: str) -> list[str]:
        """The Lambda functions of this region's stack, by their physical names."""
        client = self.session.client("cloudformation", region_name=region)
        try:
            return [
                resource["PhysicalResourceId"]
                for page in client.get_paginator("list_stack_resources").paginate(StackName=self.stack_name)
                for resource in page["StackResourceSummaries"]
                if resource["ResourceType"] == "AWS::Lambda::Function"
            ]
        except (ClientError, BotoCoreError) as error:
            raise TargetError(
                f"cannot list stack {self.stack_name}'s resources in {region}: {error}"
            ) from error

    def plan(self, region: str, mode: str) -> list[str]:
        if self.session.get_credentials() is None:
            what = (
                f"route53 update-health-check --inverted on the check in stack {self.stack_name}'s "
                f"HealthCheckId output ({region})"
                if mode == "invert"
                else f"lambda put-function-concurrency 0 on every function of stack {self.stack_name} "
                f"in {region}"
            )
            return [what, "(no AWS credentials here: the ids are read from the stacks when the drill runs)"]
        if mode == "invert":
            return [
                f"route53 update-health-check --health-check-id {self.health_check_id(region)} --inverted"
            ]
        return [
            f"lambda put-function-concurrency --function-name {name} --reserved-concurrent-executions 0 "
            f"(region {region})"
            for name in self.functions(region)
        ]

    def take_out(self, region: str, mode: str) -> None:
        if mode == "invert":
            check = self.health_check_id(region)
            self._inverted.pop(check, None)
            invert_health_check(self.route53, check, self.changes)
            return
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
        return _undo_all(self.changes)

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
        return _answers_as(f"{self.direct_endpoints()[region][1]}/health", region)

    def routed_region(self, location: str) -> str | None:
        """Where the routed name sends this machine: DNS answers for where the operator sits."""
        try:
            return str(_get_json(f"{self.http_url(location)}/health", timeout=5)["region"])
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            return None

    def websocket_url(self, location: str) -> str:
        return f"wss://ws.{self.domain}"

    def http_url(self, location: str) -> str:
        return f"https://api.{self.domain}"


def invert_health_check(route53: Any, check: str, changes: list[Change]) -> None:
    """Take a region out as the QCon demo did: the check reports the opposite of what it sees.
    The undo is recorded before the change, so an interruption in between still restores."""
    config = route53.get_health_check(HealthCheckId=check)["HealthCheck"]["HealthCheckConfig"]
    was = bool(config.get("Inverted", False))
    changes.append(
        Change(
            f"health check {check} inverted (was {was})",
            lambda: route53.update_health_check(HealthCheckId=check, Inverted=was),
        )
    )
    route53.update_health_check(HealthCheckId=check, Inverted=True)


def _undo_all(changes: list[Change]) -> bool:
    """Undo in reverse order; keep going past a failure and say whether everything was undone."""
    ok = True
    for change in reversed(changes):
        if change.done:
            continue
        try:
            change.undo()
            change.done = True
        except Exception as error:  # noqa: BLE001 - the others must still be restored
            print(f"!! could not restore {change.description}: {error}", flush=True)
            ok = False
    return ok

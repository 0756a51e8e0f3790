"""Where the drill acts: the local stack or a real deployment. Both take a region out, restore
exactly what they changed, and report health and routing as their Route 53 sees them."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import boto3

ROUTE53_HEALTHY_SHARE = 0.18  # Route 53 counts a check healthy when over 18% of checkers say so


class Target(Protocol):
    name: str

    def plan(self, region: str, mode: str) -> list[str]: ...
    def take_out(self, region: str, mode: str) -> None: ...
    def restore(self) -> bool: ...
    def healthy(self, region: str) -> bool: ...
    def routed_region(self, location: str) -> str | None: ...
    def websocket_url(self, location: str) -> str: ...
    def http_url(self, location: str) -> str: ...
    def locations(self) -> dict[str, str]: ...
    def direct_endpoints(self) -> dict[str, tuple[str, str]]: ...


def _get_json(url: str, timeout: float = 5.0) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own endpoints
        body: dict[str, Any] = json.loads(response.read())
        return body


@dataclass
class Change:
    """One thing the drill changed, with what restores it."""

    description: str
    undo: Any  # a callable: () -> None
    done: bool = False


@dataclass
class LocalTarget:
    """The local stack, found through `.local/stack.json`."""

    stack_file: Path
    name: str = "local"
    info: dict[str, Any] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)

    def __post_init__(self) -> None:
        try:
            self.info = json.loads(self.stack_file.read_text())
        except FileNotFoundError as error:
            raise SystemExit(
                f"no local stack: {self.stack_file} is missing (start one with `make local`)"
            ) from error
        self.route53 = boto3.client(
            "route53",
            endpoint_url=self.info["awsEndpointUrl"],
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",  # noqa: S106 - moto ignores credentials
        )

    def locations(self) -> dict[str, str]:
        """A client location next to each region."""
        return {"us-east-1": "new-york", "eu-west-2": "london"}

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


@dataclass
class AwsTarget:
    """A real deployment: Route 53 health checks (API in us-east-1), the region's functions."""

    domain: str
    stack_name: str = "resilient-chat"
    name: str = "aws"
    session: Any = None
    changes: list[Change] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.session = self.session or boto3.session.Session()
        self.route53 = self.session.client("route53", region_name="us-east-1")

    def locations(self) -> dict[str, str]:
        return {"us-east-1": "us-east-1", "eu-west-2": "eu-west-2"}

    def direct_endpoints(self) -> dict[str, tuple[str, str]]:
        """Unknown here: the synthetic clients use the routed names only (DNS-only failover)."""
        return {}

    def health_check_id(self, region: str) -> str:
        """The check that probes this region's own execute-api host (template.yaml's HealthCheck)."""
        for page in self.route53.get_paginator("list_health_checks").paginate():
            for check in page["HealthChecks"]:
                fqdn = check["HealthCheckConfig"].get("FullyQualifiedDomainName", "")
                if f".execute-api.{region}." in fqdn:
                    check_id: str = check["Id"]
                    return check_id
        raise SystemExit(f"no Route 53 health check probes an execute-api host in {region}")

    def functions(self, region: str) -> list[str]:
        client = self.session.client("lambda", region_name=region)
        names: list[str] = []
        for page in client.get_paginator("list_functions").paginate():
            names += [
                f["FunctionName"]
                for f in page["Functions"]
                if f["FunctionName"].startswith(f"{self.stack_name}-")
            ]
        return names

    def plan(self, region: str, mode: str) -> list[str]:
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
            invert_health_check(self.route53, self.health_check_id(region), self.changes)
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
        return _undo_all(self.changes)

    def healthy(self, region: str) -> bool:
        check = self.health_check_id(region)
        observations = self.route53.get_health_check_status(HealthCheckId=check)["HealthCheckObservations"]
        good = sum(o["StatusReport"]["Status"].startswith("Success") for o in observations)
        config = self.route53.get_health_check(HealthCheckId=check)["HealthCheck"]["HealthCheckConfig"]
        raw = bool(observations) and good / len(observations) > ROUTE53_HEALTHY_SHARE
        return raw != bool(config.get("Inverted", False))

    def routed_region(self, location: str) -> str | None:
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

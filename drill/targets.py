"""Where the drill acts: the local stack here, a real deployment in drill.aws. Both take a region
out by a named fault, restore exactly what they changed, and report health and routing as their
Route 53 sees them."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Protocol

import boto3

from drill import capacity
from stack_definition.routing import LATENCY_MS, ROUTE53_REGION, nearest
from stack_definition.state import StateDir
from stack_definition.template import region_names

# The faults, by what fails: `kill` a clean death (the process and its sockets gone), `dynamodb`
# and `lambda` gray failures (API Gateway answers, sockets stay open, the backend fails), and
# `invert` the QCon demo (the health check lies; nothing fails). `outage` is the old name: a kill
# locally, `lambda` in AWS (reserved concurrency 0), as it always did.
MODES = ("invert", "kill", "dynamodb", "lambda", "outage")
GRAY = ("dynamodb", "lambda")


def fault_of(mode: str, target: str) -> str:
    """What a mode plays on a target: `outage` is a kill locally and `lambda` in AWS."""
    return ("kill" if target == "local" else "lambda") if mode == "outage" else mode


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


FAILS = {
    "dynamodb": "every DynamoDB and DynamoDB Streams call in that region answers 500 "
    "InternalServerError; its APIs keep answering, replication into and out of it waits",
    "lambda": "every function invocation in that region fails: API Gateway answers 500 and "
    '"Internal server error" frames, $connect is refused, the event source mappings retry',
}


def get_json(url: str, timeout: float = 5.0) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own endpoints
        body: dict[str, Any] = json.loads(response.read())
        return body


def answers_as(health_url: str, region: str) -> bool:
    """Whether a region's own /health answers 200 from that region."""
    try:
        return get_json(health_url, timeout=2).get("region") == region
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
        cities = [location for location in LATENCY_MS if location not in region_names()]
        return {
            region: min((c for c in cities if nearest(c) == region), key=lambda c: LATENCY_MS[c][region])
            for region in region_names()
        }

    def direct_endpoints(self) -> dict[str, tuple[str, str]]:
        """Each region's own WebSocket and HTTP URLs, for clients whose routed name fails them."""
        return {region: (e["websocketUrl"], e["httpUrl"]) for region, e in self.info["regions"].items()}

    def _check(self, region: str) -> str:
        check: str = self.info["regions"][region]["healthCheckId"]
        return check

    def plan(self, region: str, mode: str) -> list[str]:
        control = f"POST {self.info['frontDoorUrl']}/_local/regions/{region}"
        if mode == "invert":
            current = self.route53.get_health_check(HealthCheckId=self._check(region))
            inverted = current["HealthCheck"]["HealthCheckConfig"].get("Inverted", False)
            return [
                f"route53 update-health-check --health-check-id {self._check(region)} --inverted "
                f"(now inverted={inverted}) at {self.info['awsEndpointUrl']}"
            ]
        if mode in GRAY:
            return [
                f'{control} {{"action": "fail", "service": "{mode}"}}: {FAILS[mode]}',
                f'removed by {control} {{"action": "heal"}}',
            ]
        return [
            f"stop {region}'s process (pid {self.info['regions'][region]['pid']}): "
            f'{control} {{"action": "stop"}}',
            f'removed by {control} {{"action": "start"}}',
        ]

    def take_out(self, region: str, mode: str) -> None:
        if mode == "invert":
            invert_health_check(self.route53, self._check(region), self.changes)
        elif mode in GRAY:
            self.changes.append(Change(f"{region} {mode} failing", lambda: self._control(region, "heal")))
            self._control(region, "fail", service=mode)
        else:
            self.changes.append(Change(f"{region} process stopped", lambda: self._control(region, "start")))
            self._control(region, "stop")

    def _control(self, region: str, action: str, **details: str) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 - our own endpoint
            f"{self.info['frontDoorUrl']}/_local/regions/{region}",
            data=json.dumps({"action": action, **details}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                answer: dict[str, Any] = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            raise TargetError(
                f"the local stack refused {action} {details or ''} for {region}: {error.code} "
                f"{error.read().decode(errors='replace')[:200]} (a stack older than the drill? "
                "restart `make local`)"
            ) from error
        return answer

    def restore(self) -> bool:
        return undo_all(self.changes)

    def healthy(self, region: str) -> bool:
        status = get_json(self.info["statusUrl"])
        return bool(status["regions"][region]["healthy"])

    def serves(self, region: str) -> bool:
        return answers_as(f"{self.info['regions'][region]['httpUrl']}/health", region)

    def routed_region(self, location: str) -> str | None:
        """Where a new connection from `location` lands now (a fresh request through the routed name)."""
        try:
            return str(get_json(f"{self.http_url(location)}/health?location={location}", timeout=2)["region"])
        except (urllib.error.URLError, OSError, ValueError, KeyError):
            return None

    def websocket_url(self, location: str) -> str:
        return str(self.info["frontDoorWebsocketUrl"]) + f"/?location={location}"

    def http_url(self, location: str) -> str:
        return str(self.info["frontDoorUrl"])


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


def undo_all(changes: list[Change]) -> bool:
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

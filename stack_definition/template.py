"""Read template.yaml, the single source of truth, into what the local stack needs: the regions
and the stack's name, functions with their handlers and environment, the WebSocket and HTTP
routes, the tables, the queues, the event source mappings (a stream's, a queue's), the functions'
schedules, and the Route 53 health check and latency records. Nothing here declares any of those again."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from stack_definition.cloudformation import (
    Context,
    Raw,
    Unresolvable,
    load_raw,
    resources_of_type,
    stack_name,
)
from stack_definition.event_sources import (
    Queue,
    QueueMapping,
    Schedule,
    StreamMapping,
    event_sources,
    schedules,
)
from stack_definition.integrations import AwsIntegration, Integration, MockIntegration
from stack_definition.repository import TEMPLATE

__all__ = [
    "CONNECTIONS",
    "MESSAGES",
    "Template",
    "deployed",
    "load",
    "load_cached",
    "region_names",
    "table_names",
]

CONNECTIONS = "ConnectionsTable"
MESSAGES = "MessagesTable"


@dataclass(frozen=True)
class Function:
    logical_id: str
    handler: str
    environment: dict[str, Any]  # unresolved template values
    timeout: float
    memory: int


@dataclass(frozen=True)
class RequestAuthorizer:
    """A Lambda REQUEST authorizer (`AWS::ApiGatewayV2::Authorizer`) as a route names it."""

    logical_id: str
    function: str
    identity_sources: list[str]  # e.g. `route.request.querystring.token`


@dataclass(frozen=True)
class WebSocketRoute:
    """A route and its integration: a Lambda function (AWS_PROXY), or one API Gateway answers
    without a function (MOCK, or an AWS service action such as DynamoDB's Query)."""

    route_key: str
    function: str | None
    two_way: bool  # has a route response: the integration's answer goes back to the client
    authorizer: RequestAuthorizer | None = None  # a route with `AuthorizationType: CUSTOM`
    integration: Integration | None = None  # when no function: what API Gateway itself calls

    @property
    def mock(self) -> MockIntegration | None:
        return self.integration if isinstance(self.integration, MockIntegration) else None


@dataclass(frozen=True)
class HttpRoute:
    method: str
    path: str  # with {param} segments, as in the template

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if self.method not in (method, "ANY"):
            return None
        return self.match_path(path)

    def match_path(self, path: str) -> dict[str, str] | None:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
        found = re.fullmatch(pattern, path)
        return found.groupdict() if found else None


@dataclass
class Template:
    raw: Raw
    stack_name: str
    http_api: str  # logical ids
    websocket_api: str
    functions: dict[str, Function]
    websocket_routes: dict[str, WebSocketRoute]
    websocket_stage: Any
    http_routes: list[tuple[HttpRoute, str]]
    http_cors: Any
    stream: StreamMapping
    queues: dict[str, Queue]
    queue_mappings: list[QueueMapping]
    schedules: list[Schedule]  # the EventBridge rules that invoke a function at a rate
    # The deploy's parameter overrides (`--parameter-overrides`): every stack of it gets them.
    parameters: Mapping[str, str] = field(default_factory=dict)

    @property
    def regions(self) -> list[str]:
        """Every region the chat runs in: the replicas of the messages global table."""
        regions: list[str] = self.context("").parameter("ReplicaRegions")
        return regions

    @property
    def region_slots(self) -> int:
        """How many regions ReplicaRegions may name: the template's region slots (two always,
        and one per `ListsRegionN` condition)."""
        conditions: dict[str, Any] = self.raw.get("Conditions", {})
        return 2 + sum(name.startswith("ListsRegion") for name in conditions)

    def check_regions(self) -> list[str]:
        """ReplicaRegions, refused (ValueError, saying why) unless every stack could be made:
        two regions up to the template's slots, each once, including PrimaryRegion and us-east-1
        (the page's distribution lives there: the template's rule PageDistributionNeedsUsEast1)."""
        regions = self.regions
        primary = self.context("").parameter("PrimaryRegion")
        if not 2 <= len(regions) <= self.region_slots or len(set(regions)) != len(regions):
            raise ValueError(
                f"ReplicaRegions takes 2 to {self.region_slots} different regions, not {','.join(regions)!r}"
            )
        if not all(re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]", region) for region in regions):
            raise ValueError(f"ReplicaRegions names regions such as us-east-1, not {','.join(regions)!r}")
        for needed in (primary, "us-east-1"):
            if needed not in regions:
                raise ValueError(
                    f"ReplicaRegions must include {needed} (PrimaryRegion, and the page's region)"
                )
        return regions

    def with_parameters(self, parameters: Mapping[str, str]) -> Template:
        """The template as a deploy with these parameter overrides sees it (ReplicaRegions...)."""
        return replace(self, parameters={**self.parameters, **parameters})

    def context(
        self,
        region: str,
        parameters: Mapping[str, Any] | None = None,
        refs: Mapping[str, str] | None = None,
        attributes: Mapping[str, str] | None = None,
    ) -> Context:
        overrides = {**self.parameters, **(parameters or {})}
        return Context(self.raw, region, self.stack_name, overrides, refs or {}, attributes or {})

    @property
    def health_checks(self) -> list[str]:
        return list(resources_of_type(self.raw, "AWS::Route53::HealthCheck"))

    def api_ids(self, region: str) -> dict[str, str]:
        """A local id for each of a region's APIs (AWS makes up ten random characters)."""
        apis = resources_of_type(self.raw, "AWS::ApiGatewayV2::Api", "AWS::Serverless::HttpApi")
        return {logical_id: f"{logical_id.lower()}-{region}" for logical_id in apis}

    @property
    def custom_domains(self) -> list[str]:
        return list(resources_of_type(self.raw, "AWS::ApiGatewayV2::DomainName"))

    def endpoint_health_check(self, ctx: Context) -> Any:
        """The Route 53 health check that probes a region's own endpoint (its `/health`). The
        WebSocket name's calculated and alarm checks are not played locally: see docs/local.md."""
        (check,) = (
            check
            for check in resources_of_type(self.raw, "AWS::Route53::HealthCheck").values()
            if check["Properties"]["HealthCheckConfig"]["Type"] in ("HTTP", "HTTPS")
        )
        return ctx.resolve(check["Properties"])

    def latency_records(self, ctx: Context) -> list[Any]:
        """A region's latency records (record sets with a `Region`), as that region's stack makes them."""
        records = resources_of_type(self.raw, "AWS::Route53::RecordSet").values()
        resolved = [ctx.resolve(r["Properties"]) for r in records if "Region" in r["Properties"]]
        return [{k: v for k, v in record.items() if k != "HostedZoneId"} for record in resolved]

    def table(self, logical_id: str) -> dict[str, Any]:
        """A table's properties as CreateTable arguments (billing, keys, indexes, stream)."""
        props = self.raw["Resources"][logical_id]["Properties"]
        args: dict[str, Any] = {
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if "GlobalSecondaryIndexes" in props:
            args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if "StreamSpecification" in props:
            args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        return args

    def ttl_attribute(self, logical_id: str) -> str | None:
        spec = self.raw["Resources"][logical_id]["Properties"].get("TimeToLiveSpecification")
        return spec["AttributeName"] if spec and spec.get("Enabled") else None


def _function_of_uri(uri: Any) -> str:
    text = uri["Fn::Sub"] if isinstance(uri, dict) else str(uri)
    found = re.search(r"\$\{(\w+)\.Arn\}", text)
    if not found:
        raise Unresolvable(f"cannot find the function of integration {uri!r}")
    return found.group(1)


def _authorizer_of(
    route_id: str, props: dict[str, Any], authorizers: dict[str, RequestAuthorizer]
) -> RequestAuthorizer | None:
    kind = props.get("AuthorizationType", "NONE")
    if kind == "NONE":
        return None
    authorizer = props.get("AuthorizerId", {})
    if kind != "CUSTOM" or not isinstance(authorizer, dict) or authorizer.get("Ref") not in authorizers:
        raise Unresolvable(f"route {route_id}: only Lambda REQUEST authorizers are played locally")
    return authorizers[authorizer["Ref"]]


def deployed(environ: Mapping[str, str]) -> Template:
    """The template as `make deploy`, `make delete` and the drill in AWS see it: REPLICA_REGIONS,
    when set, overrides ReplicaRegions' default (docs/deploy.md)."""
    regions = environ.get("REPLICA_REGIONS")
    return load_cached().with_parameters({"ReplicaRegions": regions}) if regions else load_cached()


@cache
def load_cached() -> Template:
    """The repository's template.yaml, read on first use and then kept (nothing reads it at import)."""
    return load()


def region_names(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The stack's regions (`ReplicaRegions`); the first holds the global table. With `environ`,
    a deployment's: REPLICA_REGIONS there when set (docs/deploy.md)."""
    return tuple((load_cached() if environ is None else deployed(environ)).regions)


def load(path: Path = TEMPLATE) -> Template:
    raw = load_raw(path)
    globals_ = raw.get("Globals", {}).get("Function", {})
    functions: dict[str, Function] = {}
    for logical_id, resource in resources_of_type(raw, "AWS::Serverless::Function").items():
        props = resource["Properties"]
        env = {
            **globals_.get("Environment", {}).get("Variables", {}),
            **props.get("Environment", {}).get("Variables", {}),
        }
        functions[logical_id] = Function(
            logical_id=logical_id,
            handler=props.get("Handler", globals_.get("Handler")),
            environment=env,
            timeout=float(props.get("Timeout", globals_.get("Timeout", 3))),
            memory=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
        )

    (ws_id,) = (
        k
        for k, v in resources_of_type(raw, "AWS::ApiGatewayV2::Api").items()
        if v["Properties"].get("ProtocolType") == "WEBSOCKET"
    )
    integration_responses = resources_of_type(raw, "AWS::ApiGatewayV2::IntegrationResponse").values()
    integrations: dict[str, str | Integration] = {}
    for k, v in resources_of_type(raw, "AWS::ApiGatewayV2::Integration").items():
        props, kind = v["Properties"], v["Properties"]["IntegrationType"]
        responses = [
            r["Properties"] for r in integration_responses if r["Properties"]["IntegrationId"] == {"Ref": k}
        ]
        if kind == "MOCK":
            integrations[k] = MockIntegration.of(k, props, responses)
        elif kind == "AWS":
            integrations[k] = AwsIntegration.of(k, props, responses)
        else:
            integrations[k] = _function_of_uri(props["IntegrationUri"])
    responded = {
        v["Properties"]["RouteId"]["Ref"]
        for v in resources_of_type(raw, "AWS::ApiGatewayV2::RouteResponse").values()
    }
    authorizers = {
        k: RequestAuthorizer(
            logical_id=k,
            function=_function_of_uri(v["Properties"]["AuthorizerUri"]),
            identity_sources=list(v["Properties"].get("IdentitySource", [])),
        )
        for k, v in resources_of_type(raw, "AWS::ApiGatewayV2::Authorizer").items()
        if v["Properties"]["AuthorizerType"] == "REQUEST"
    }
    ws_routes: dict[str, WebSocketRoute] = {}
    for logical_id, route in resources_of_type(raw, "AWS::ApiGatewayV2::Route").items():
        props = route["Properties"]
        target = props["Target"]["Fn::Sub"] if isinstance(props["Target"], dict) else props["Target"]
        integration = re.fullmatch(r"integrations/\$\{(\w+)\}", target)
        if not integration:
            raise Unresolvable(f"route {logical_id} has an unsupported target {target!r}")
        backend = integrations[integration.group(1)]
        ws_routes[props["RouteKey"]] = WebSocketRoute(
            route_key=props["RouteKey"],
            function=backend if isinstance(backend, str) else None,
            integration=None if isinstance(backend, str) else backend,
            two_way=logical_id in responded and "RouteResponseSelectionExpression" in props,
            authorizer=_authorizer_of(logical_id, props, authorizers),
        )
    (stage,) = (
        v["Properties"]
        for v in resources_of_type(raw, "AWS::ApiGatewayV2::Stage").values()
        if v["Properties"]["ApiId"] == {"Ref": ws_id}
    )

    http_routes: list[tuple[HttpRoute, str]] = []
    for logical_id, resource in resources_of_type(raw, "AWS::Serverless::Function").items():
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                props = event["Properties"]
                method = str(props.get("Method", "ANY")).upper()
                http_routes.append((HttpRoute(method, props["Path"]), logical_id))
    ((http_api_id, http_api),) = resources_of_type(raw, "AWS::Serverless::HttpApi").items()

    stream, queues, queue_mappings = event_sources(raw)
    return Template(
        raw=raw,
        stack_name=stack_name(),
        http_api=http_api_id,
        websocket_api=ws_id,
        functions=functions,
        websocket_routes=ws_routes,
        websocket_stage=stage,
        http_routes=http_routes,
        http_cors=http_api["Properties"].get("CorsConfiguration"),
        stream=stream,
        queues=queues,
        queue_mappings=queue_mappings,
        schedules=schedules(raw),
    )


def table_names(template: Template) -> dict[str, str]:
    """Local physical names: the messages table's from its parameter, the connections table's
    as CloudFormation would make it (stack name, logical id)."""
    return {
        MESSAGES: template.context("").parameter("MessagesTableName"),
        CONNECTIONS: f"{template.stack_name}-{CONNECTIONS}",
    }

"""Read template.yaml, the single source of truth, into what the local stack needs: functions
with their handlers and environment, the WebSocket and HTTP routes, the tables, the stream
event source mapping and the Route 53 health check. Nothing here declares any of those again."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, !GetAtt...) as their long forms."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    if suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_raw(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open() as stream:
        document: dict[str, Any] = yaml.load(stream, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return document


class Unresolvable(ValueError):
    pass


_NO_VALUE = object()


def _is_intrinsic(key: str) -> bool:
    return key in ("Ref", "Condition") or key.startswith("Fn::")


@dataclass
class Context:
    """The values a deployment would give: parameters, pseudo parameters and resource ids."""

    region: str
    stack_name: str
    parameters: dict[str, Any]
    refs: dict[str, str] = field(default_factory=dict)  # logical id -> physical id
    attributes: dict[str, str] = field(default_factory=dict)  # "Logical.Attr" -> value
    conditions: dict[str, bool] = field(default_factory=dict)
    account_id: str = "123456789012"

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::StackName": self.stack_name,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        for table in (pseudo, self.parameters, self.refs):
            if name in table:
                return table[name]
        raise Unresolvable(f"no local value for Ref {name}")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not _is_intrinsic(next(iter(value))):
            resolved = {k: self.resolve(v) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v is not _NO_VALUE}
        ((key, arg),) = value.items()
        if value == {"Ref": "AWS::NoValue"}:
            return _NO_VALUE
        if key == "Ref":
            return self.ref(arg)
        if key == "Fn::Sub":
            template, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
            return re.sub(r"\$\{([^}!]+)\}", lambda m: str(self._sub_var(m.group(1), extra)), template)
        if key == "Fn::GetAtt":
            return self._attribute(".".join(arg))
        if key == "Fn::If":
            name, yes, no = arg
            return self.resolve(yes if self.condition(name) else no)
        if key == "Fn::Select":
            index, items = self.resolve(arg[0]), self.resolve(arg[1])
            return items[int(index)]
        if key == "Fn::Join":
            return str(arg[0]).join(str(v) for v in self.resolve(arg[1]))
        if key.startswith("Fn::") or key == "Condition":
            raise Unresolvable(f"{key} is not supported locally")
        return value

    def _sub_var(self, name: str, extra: dict[str, Any]) -> Any:
        if name in extra:
            return extra[name]
        return self._attribute(name) if "." in name else self.ref(name)

    def _attribute(self, name: str) -> str:
        if name not in self.attributes:
            raise Unresolvable(f"no local value for GetAtt {name}")
        return self.attributes[name]

    def condition(self, name: str) -> bool:
        return self.conditions[name]


def _evaluate_condition(expr: Any, ctx: Context, raw: dict[str, Any]) -> bool:
    ((key, arg),) = expr.items()
    if key == "Fn::Equals":
        return bool(ctx.resolve(arg[0]) == ctx.resolve(arg[1]))
    if key == "Fn::Not":
        return not _evaluate_condition(arg[0], ctx, raw)
    if key == "Fn::And":
        return all(_evaluate_condition(a, ctx, raw) for a in arg)
    if key == "Fn::Or":
        return any(_evaluate_condition(a, ctx, raw) for a in arg)
    if key == "Condition":
        return _evaluate_condition(raw["Conditions"][arg], ctx, raw)
    raise Unresolvable(f"condition {key} is not supported locally")


@dataclass(frozen=True)
class Function:
    logical_id: str
    handler: str
    environment: dict[str, Any]  # unresolved template values
    timeout: float
    memory: int


@dataclass(frozen=True)
class WebSocketRoute:
    route_key: str
    function: str
    two_way: bool  # has a route response: the handler's body goes back to the client


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
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
        found = re.fullmatch(pattern, path)
        return found.groupdict() if found else None


@dataclass(frozen=True)
class StreamMapping:
    function: str
    batch_size: int
    batching_window: float
    starting_position: str
    report_batch_item_failures: bool
    bisect_on_error: bool
    max_retries: int
    filters: list[str]  # Lambda event filter patterns (JSON)


@dataclass
class Template:
    raw: dict[str, Any]
    functions: dict[str, Function]
    websocket_routes: dict[str, WebSocketRoute]
    websocket_route_selection: str
    websocket_stage: Any
    http_routes: list[tuple[HttpRoute, str]]
    http_cors: Any
    stream: StreamMapping
    health_check: dict[str, Any]

    def parameter_defaults(self) -> dict[str, Any]:
        params = self.raw.get("Parameters", {})
        values: dict[str, Any] = {}
        for name, spec in params.items():
            default = spec.get("Default", "")
            if spec.get("Type") == "CommaDelimitedList":
                default = [v.strip() for v in str(default).split(",")]
            values[name] = default
        return values

    def context(
        self,
        region: str,
        stack_name: str,
        parameters: dict[str, Any],
        refs: dict[str, str],
        attributes: dict[str, str] | None = None,
    ) -> Context:
        ctx = Context(region, stack_name, {**self.parameter_defaults(), **parameters}, refs, attributes or {})
        for name, expr in self.raw.get("Conditions", {}).items():
            ctx.conditions[name] = _evaluate_condition(expr, ctx, self.raw)
        return ctx

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


def _resources(raw: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in raw["Resources"].items() if v["Type"] == kind}


def _function_of_uri(uri: Any) -> str:
    text = uri["Fn::Sub"] if isinstance(uri, dict) else str(uri)
    found = re.search(r"\$\{(\w+)\.Arn\}", text)
    if not found:
        raise Unresolvable(f"cannot find the function of integration {uri!r}")
    return found.group(1)


def load(path: Path = TEMPLATE) -> Template:
    raw = load_raw(path)
    globals_ = raw.get("Globals", {}).get("Function", {})
    functions: dict[str, Function] = {}
    for logical_id, resource in _resources(raw, "AWS::Serverless::Function").items():
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

    ((ws_id, ws_api),) = (
        (k, v)
        for k, v in _resources(raw, "AWS::ApiGatewayV2::Api").items()
        if v["Properties"].get("ProtocolType") == "WEBSOCKET"
    )
    integrations = {
        k: _function_of_uri(v["Properties"]["IntegrationUri"])
        for k, v in _resources(raw, "AWS::ApiGatewayV2::Integration").items()
    }
    responded = {
        v["Properties"]["RouteId"]["Ref"]
        for v in _resources(raw, "AWS::ApiGatewayV2::RouteResponse").values()
    }
    ws_routes: dict[str, WebSocketRoute] = {}
    for logical_id, route in _resources(raw, "AWS::ApiGatewayV2::Route").items():
        props = route["Properties"]
        target = props["Target"]["Fn::Sub"] if isinstance(props["Target"], dict) else props["Target"]
        integration = re.fullmatch(r"integrations/\$\{(\w+)\}", target)
        if not integration:
            raise Unresolvable(f"route {logical_id} has an unsupported target {target!r}")
        ws_routes[props["RouteKey"]] = WebSocketRoute(
            route_key=props["RouteKey"],
            function=integrations[integration.group(1)],
            two_way=logical_id in responded and "RouteResponseSelectionExpression" in props,
        )
    (stage,) = (
        v["Properties"]
        for v in _resources(raw, "AWS::ApiGatewayV2::Stage").values()
        if v["Properties"]["ApiId"] == {"Ref": ws_id}
    )

    http_routes: list[tuple[HttpRoute, str]] = []
    for logical_id, resource in _resources(raw, "AWS::Serverless::Function").items():
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                props = event["Properties"]
                method = str(props.get("Method", "ANY")).upper()
                http_routes.append((HttpRoute(method, props["Path"]), logical_id))
    (http_api,) = _resources(raw, "AWS::Serverless::HttpApi").values()

    (mapping,) = _resources(raw, "AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    stream = StreamMapping(
        function=props["FunctionName"]["Ref"],
        batch_size=int(props.get("BatchSize", 100)),
        batching_window=float(props.get("MaximumBatchingWindowInSeconds", 0)),
        starting_position=props.get("StartingPosition", "LATEST"),
        report_batch_item_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
        bisect_on_error=bool(props.get("BisectBatchOnFunctionError", False)),
        max_retries=int(props.get("MaximumRetryAttempts", -1)),
        filters=[f["Pattern"] for f in props.get("FilterCriteria", {}).get("Filters", [])],
    )
    # The endpoint probe of /health; the ws. record's calculated and alarm checks are not emulated.
    (health,) = (
        check
        for check in _resources(raw, "AWS::Route53::HealthCheck").values()
        if check["Properties"]["HealthCheckConfig"]["Type"] in ("HTTP", "HTTPS")
    )
    return Template(
        raw=raw,
        functions=functions,
        websocket_routes=ws_routes,
        websocket_route_selection=ws_api["Properties"]["RouteSelectionExpression"],
        websocket_stage=stage,
        http_routes=http_routes,
        http_cors=http_api["Properties"].get("CorsConfiguration"),
        stream=stream,
        health_check=health["Properties"]["HealthCheckConfig"],
    )

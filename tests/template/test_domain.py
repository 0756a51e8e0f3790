"""The custom domain is optional: all of it sits behind one condition, and it routes on health."""

from __future__ import annotations

from typing import Any

from tests.template.cfn import (
    DOMAIN_RESOURCE_TYPES,
    Context,
    Template,
    condition_implies,
    resources_of_type,
    stack_in,
    unguarded_refs,
)


def _domain_resource_names(template: Template) -> set[str]:
    return set(resources_of_type(template, *DOMAIN_RESOURCE_TYPES))


def test_given_no_domain_when_deployed_then_no_domain_resource_is_created(
    primary_stack: Context, secondary_stack: Context
) -> None:
    for stack in (primary_stack, secondary_stack):
        assert stack.parameter("DomainName") == ""
        created = {r["Type"] for r in stack.resources().values()}
        assert not created & DOMAIN_RESOURCE_TYPES, stack.region


def test_given_a_domain_and_zone_when_deployed_then_every_domain_resource_is_created(
    template: Template,
) -> None:
    overrides = {"DomainName": "chat.example.com", "HostedZoneId": "Z0123456789ABC"}
    domain = _domain_resource_names(template)
    # The APIs' names in every region; the page's chat.<domain> (CloudFront's certificate and
    # alias records) only where its distribution lives, us-east-1.
    page = {name for name in domain if name.startswith("Page")}
    created = {
        region: stack_in(template, region, overrides).resources() for region in ("us-east-1", "eu-west-2")
    }
    for region, resources in created.items():
        assert domain - page <= resources.keys(), region
        assert {r["Type"] for r in resources.values()} >= DOMAIN_RESOURCE_TYPES
    assert page <= created["us-east-1"].keys()
    assert not page & created["eu-west-2"].keys()


def test_given_the_template_then_domain_resources_and_whatever_uses_them_sit_behind_has_domain(
    template: Template,
) -> None:
    domain_names = _domain_resource_names(template)
    assert template["Conditions"]["HasDomain"]["Fn::And"][0] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "DomainName"}, ""]}]
    }
    for name, resource in template["Resources"].items():
        used = set(unguarded_refs(template, resource, "HasDomain"))
        if name in domain_names or used & domain_names:
            condition = resource.get("Condition", "-")
            assert condition in template["Conditions"], f"{name} has no condition"
            assert condition_implies(template, condition, "HasDomain"), name
    for name, output in template["Outputs"].items():
        if set(unguarded_refs(template, output["Value"], "HasDomain")) & (domain_names | {"DomainName"}):
            condition = output.get("Condition", "-")
            assert condition in template["Conditions"], f"output {name} has no condition"
            assert condition_implies(template, condition, "HasDomain"), name


def test_given_a_region_then_its_health_check_probes_its_own_execute_api_host_often(
    template: Template,
) -> None:
    config = template["Resources"]["HealthCheck"]["Properties"]["HealthCheckConfig"]
    assert config["Type"] == "HTTPS"
    assert config["Port"] == 443
    assert config["ResourcePath"] == "/health"
    assert config["RequestInterval"] == 10
    assert config["FullyQualifiedDomainName"] == {
        "Fn::Sub": "${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
    }
    threshold = config["FailureThreshold"]
    default = template["Parameters"][threshold["Ref"]]["Default"] if "Ref" in threshold else threshold
    assert 1 <= int(default) <= 3


def test_given_both_names_then_each_is_a_latency_alias_tied_to_this_regions_health_check(
    template: Template,
) -> None:
    records = _latency_records(template)
    domains = {record["Properties"]["AliasTarget"]["DNSName"]["Fn::GetAtt"][0] for record in records.values()}
    assert domains == {"HttpCustomDomain", "WebSocketCustomDomain"}
    for name, record in records.items():
        properties: dict[str, Any] = record["Properties"]
        assert properties["Region"] == {"Ref": "AWS::Region"}, name
        assert "HealthCheck" in _checks_behind(template, properties["HealthCheckId"]["Ref"]), name
        assert properties["SetIdentifier"], name
        target = properties["AliasTarget"]
        domain = target["DNSName"]["Fn::GetAtt"][0]
        assert target["DNSName"] == {"Fn::GetAtt": [domain, "RegionalDomainName"]}
        assert target["HostedZoneId"] == {"Fn::GetAtt": [domain, "RegionalHostedZoneId"]}


def test_given_both_custom_domains_then_each_maps_to_its_api_with_a_dns_validated_certificate(
    template: Template,
) -> None:
    mappings = {
        m["Properties"]["DomainName"]["Ref"]: m["Properties"]["ApiId"]["Ref"]
        for m in resources_of_type(template, "AWS::ApiGatewayV2::ApiMapping").values()
    }
    assert mappings == {"HttpCustomDomain": "HttpApi", "WebSocketCustomDomain": "WebSocketApi"}
    for certificate in resources_of_type(template, "AWS::CertificateManager::Certificate").values():
        properties = certificate["Properties"]
        assert properties["ValidationMethod"] == "DNS"
        for option in properties["DomainValidationOptions"]:
            assert option["HostedZoneId"] == {"Ref": "HostedZoneId"}


def _checks_behind(template: Template, check: str) -> set[str]:
    """The check itself and, for a calculated check that needs every child healthy, its children's."""
    config = template["Resources"][check]["Properties"]["HealthCheckConfig"]
    if config["Type"] != "CALCULATED":
        return {check}
    children = [child["Ref"] for child in config["ChildHealthChecks"]]
    assert config["HealthThreshold"] == len(children), f"{check} must need every child healthy"
    return {check}.union(*(_checks_behind(template, child) for child in children))


def _latency_records(template: Template) -> dict[str, dict[str, Any]]:
    """The APIs' latency records (the page's chat.<domain> is a plain alias of its distribution)."""
    records = resources_of_type(template, "AWS::Route53::RecordSet")
    return {name: record for name, record in records.items() if "Region" in record["Properties"]}


def _record(template: Template, domain: str) -> dict[str, Any]:
    (record,) = (
        r["Properties"]
        for r in _latency_records(template).values()
        if r["Properties"]["AliasTarget"]["DNSName"]["Fn::GetAtt"][0] == domain
    )
    return dict(record)


def _ws_alarms(template: Template) -> dict[str, dict[str, Any]]:
    """The alarms behind the ws. record's health check (its CLOUDWATCH_METRIC children's)."""
    behind = _checks_behind(template, _record(template, "WebSocketCustomDomain")["HealthCheckId"]["Ref"])
    configs = [template["Resources"][check]["Properties"]["HealthCheckConfig"] for check in behind]
    names = [c["AlarmIdentifier"]["Name"]["Ref"] for c in configs if c["Type"] == "CLOUDWATCH_METRIC"]
    return {name: template["Resources"][name]["Properties"] for name in names}


def _watched(alarm: dict[str, Any]) -> tuple[str, str, frozenset[tuple[str, str]]]:
    dimensions = frozenset(
        (d["Name"], d["Value"]["Ref"] if isinstance(d["Value"], dict) else d["Value"])
        for d in alarm["Dimensions"]
    )
    return alarm["Namespace"], alarm["MetricName"], dimensions


# What a client can raise on its own: refused handshakes and frames (4xx from our functions),
# API Gateway's own refusals, the authorizer's "Unauthorized" for a bad token (a Lambda error by
# API Gateway's design), DynamoDB's answers to a bad request.
CLIENT_TRIPPABLE = {
    ("AWS/ApiGateway", "IntegrationError"),
    ("AWS/ApiGateway", "ClientError"),
    ("AWS/ApiGateway", "4XX"),
    ("AWS/ApiGateway", "4xx"),
    ("AWS/DynamoDB", "UserErrors"),
    ("AWS/DynamoDB", "ConditionalCheckFailedRequests"),
}


def test_given_the_websocket_name_then_no_signal_behind_it_is_one_a_client_can_trip(
    template: Template,
) -> None:
    alarms = _ws_alarms(template)
    assert alarms, "the ws. record follows more than /health"
    for name, alarm in alarms.items():
        namespace, metric, dimensions = _watched(alarm)
        assert (namespace, metric) not in CLIENT_TRIPPABLE, name
        assert ("FunctionName", "AuthorizerFunction") not in dimensions or metric != "Errors", name


def test_given_the_websocket_name_then_it_leaves_a_region_whose_websocket_backend_fails(
    template: Template,
) -> None:
    """Its functions failing or throttled, API Gateway unable to call them, DynamoDB's own 500s on
    the calls the WebSocket path makes: each one alone takes the region out of ws."""
    watched = {_watched(alarm) for alarm in _ws_alarms(template).values()}

    def function(metric: str, name: str) -> tuple[str, str, frozenset[tuple[str, str]]]:
        return "AWS/Lambda", metric, frozenset({("FunctionName", name)})

    def table(name: str, operation: str) -> tuple[str, str, frozenset[tuple[str, str]]]:
        return "AWS/DynamoDB", "SystemErrors", frozenset({("TableName", name), ("Operation", operation)})

    path = ["ConnectFunction", "SendMessageFunction", "FanoutFunction", "FanoutWorkerFunction"]
    assert {function("Errors", name) for name in path} <= watched
    assert {function("Throttles", name) for name in [*path, "AuthorizerFunction"]} <= watched
    api = frozenset({("ApiId", "WebSocketApi"), ("Stage", "StageName")})
    assert ("AWS/ApiGateway", "ExecutionError", api) in watched
    assert {
        table(t, op) for t in ("MessagesTableName", "ConnectionsTable") for op in ("PutItem", "Query")
    } <= watched


def test_given_the_websocket_names_alarms_then_route53_can_read_each_and_a_quiet_region_stays_healthy(
    template: Template,
) -> None:
    """Route 53 mirrors an alarm on one plain metric with a basic statistic; no traffic is no data,
    and no data is healthy; a minute at most per period, so that it follows a 10 s health check
    within minutes."""
    for name, alarm in _ws_alarms(template).items():
        assert "Metrics" not in alarm, name
        assert alarm["Statistic"] in {"Sum", "Average", "Maximum", "Minimum", "SampleCount"}, name
        assert alarm["Period"] == 60, name
        assert alarm["EvaluationPeriods"] <= 2, name
        assert alarm["TreatMissingData"] == "notBreaching", name
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold", name
        assert alarm["Threshold"] >= 1, name
    checks = resources_of_type(template, "AWS::Route53::HealthCheck").values()
    for check in checks:
        config = check["Properties"]["HealthCheckConfig"]
        if config["Type"] == "CLOUDWATCH_METRIC":
            assert config["InsufficientDataHealthStatus"] == "Healthy"
            assert config["AlarmIdentifier"]["Region"] == {"Ref": "AWS::Region"}


def test_given_the_http_name_then_it_follows_this_regions_health_endpoint_only(template: Template) -> None:
    assert _record(template, "HttpCustomDomain")["HealthCheckId"] == {"Ref": "HealthCheck"}

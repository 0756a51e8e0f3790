"""Any number of regions, two to five: every list of the template that names regions follows
ReplicaRegions alone (the global table's replicas, the secret's replicas, the replication alarms,
the dashboard), and each region's stack makes its own health check and latency records."""

from __future__ import annotations

import json
import re
from functools import partial
from typing import Any

import pytest

from tests.template.cfn import Context, Template, stack_in

TWO = ["us-east-1", "eu-west-2"]
THREE = [*TWO, "ap-northeast-1"]
FIVE = [*THREE, "ap-southeast-2", "sa-east-1"]
DOMAIN = {"DomainName": "chat.example.com", "HostedZoneId": "Z0123456789ABC"}
LISTS = pytest.mark.parametrize("regions", [TWO, THREE, FIVE], ids=["2", "3", "5"])


def _stacks(template: Template, regions: list[str], **overrides: str) -> dict[str, Context]:
    """Each region's stack, deployed with this ReplicaRegions."""
    parameters = {"ReplicaRegions": ",".join(regions), **overrides}
    return {region: stack_in(template, region, parameters) for region in regions}


def _resolved(stack: Context, value: Any) -> Any:
    """A value as CloudFormation writes it, resolved as far as the template tests can."""
    if isinstance(value, dict) and not (len(value) == 1 and next(iter(value)).startswith(("Fn::", "Ref"))):
        return {key: _resolved(stack, inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_resolved(stack, item) for item in value]
    return stack.resolve(value)


def _substituted(values: dict[str, str], variable: re.Match[str]) -> str:
    """A ${name} of an Fn::Sub: its value, or <name> for what only CloudFormation knows."""
    return values.get(variable[1], f"<{variable[1]}>")


@LISTS
def test_given_n_regions_then_the_primary_makes_the_global_table_with_a_protected_replica_in_each(
    template: Template, regions: list[str]
) -> None:
    stacks = _stacks(template, regions)
    assert [r for r, stack in stacks.items() if "MessagesTable" in stack.resources()] == ["us-east-1"]
    primary = stacks["us-east-1"]
    replicas = _resolved(primary, primary.resources()["MessagesTable"]["Properties"]["Replicas"])
    assert [replica["Region"] for replica in replicas] == regions
    for replica in replicas:
        assert replica["DeletionProtectionEnabled"] is True, replica["Region"]
        assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


@LISTS
def test_given_n_regions_then_the_session_key_has_a_replica_in_every_region_but_the_primary(
    template: Template, regions: list[str]
) -> None:
    primary = _stacks(template, regions)["us-east-1"]
    secret = primary.resources()["SessionSigningKey"]["Properties"]
    assert [replica["Region"] for replica in _resolved(primary, secret["ReplicaRegions"])] == regions[1:]


@LISTS
def test_given_n_regions_then_every_other_stack_finds_its_own_replica_stream(
    template: Template, regions: list[str]
) -> None:
    for region, stack in _stacks(template, regions).items():
        created = stack.resources()
        assert ("MessagesReplicaStream" in created) is (region != "us-east-1"), region
        assert ("MessagesTable" in created) is (region == "us-east-1"), region


@LISTS
def test_given_n_regions_then_each_stack_watches_replication_towards_every_peer_once(
    template: Template, regions: list[str]
) -> None:
    for region, stack in _stacks(template, regions).items():
        alarms = [
            _resolved(stack, resource["Properties"])
            for resource in stack.resources().values()
            if resource["Type"] == "AWS::CloudWatch::Alarm"
            and resource["Properties"].get("MetricName") == "ReplicationLatency"
        ]
        receiving = [
            next(d["Value"] for d in alarm["Dimensions"] if d["Name"] == "ReceivingRegion")
            for alarm in alarms
        ]
        assert sorted(receiving) == sorted(r for r in regions if r != region), region
        for alarm, peer in zip(alarms, receiving, strict=True):
            assert peer in alarm["AlarmDescription"]


@LISTS
def test_given_n_regions_then_the_dashboard_graphs_replication_towards_every_region(
    template: Template, regions: list[str]
) -> None:
    for region, stack in _stacks(template, regions).items():
        text, variables = stack.resources()["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
        values = {name: str(stack.resolve(value)) for name, value in variables.items()}
        body = json.loads(re.sub(r"\$\{([^}]+)\}", partial(_substituted, values), text))
        (graph,) = [w for w in body["widgets"] if "Replication latency" in w["properties"].get("title", "")]
        first, *others = graph["properties"]["metrics"]
        assert first == [
            "AWS/DynamoDB",
            "ReplicationLatency",
            "TableName",
            "<MessagesTableName>",
            "ReceivingRegion",
            regions[0],
        ]
        assert others == [["...", other] for other in regions[1:]], region


@LISTS
def test_given_n_regions_and_a_domain_then_each_stack_routes_both_names_to_itself_behind_its_own_check(
    template: Template, regions: list[str]
) -> None:
    answers: dict[str, list[str]] = {}
    identifiers: set[str] = set()
    for region, stack in _stacks(template, regions, **DOMAIN).items():
        created = stack.resources()
        check = _resolved(stack, created["HealthCheck"]["Properties"]["HealthCheckConfig"])
        assert check["FullyQualifiedDomainName"].endswith(f".execute-api.{region}.amazonaws.com")
        records = {
            name: _resolved(stack, resource["Properties"])
            for name, resource in created.items()
            if resource["Type"] == "AWS::Route53::RecordSet" and "Region" in resource["Properties"]
        }
        assert len(records) == 2, region
        for record in records.values():
            assert record["Region"] == region
            answers.setdefault(record["Name"], []).append(region)
            identifiers.add(record["SetIdentifier"])
    assert answers == {"api.chat.example.com.": regions, "ws.chat.example.com.": regions}
    assert len(identifiers) == 2 * len(regions)


@LISTS
def test_given_n_regions_then_the_page_fails_over_from_us_east_1_to_the_first_other_region_listed(
    template: Template, regions: list[str]
) -> None:
    """CloudFront's origin groups hold exactly two origins: the page is served by two regions."""
    owner = _stacks(template, regions, PeerPageBucket="peer-bucket")["us-east-1"]
    origins = owner.resources()["PageDistribution"]["Properties"]["DistributionConfig"]["Origins"]
    domains = [owner.resolve(origin["DomainName"]) for origin in origins]
    assert domains[1:] == [f"peer-bucket.s3.{regions[1]}.amazonaws.com"]
    for region in regions[1:]:
        assert "PageDistribution" not in _stacks(template, regions)[region].resources()


def test_given_the_region_order_then_us_east_1_need_not_come_first_for_the_peers(template: Template) -> None:
    regions = ["eu-west-2", "ap-northeast-1", "us-east-1"]
    stacks = _stacks(template, regions, PrimaryRegion="eu-west-2")
    primary = stacks["eu-west-2"]
    secret = primary.resources()["SessionSigningKey"]["Properties"]
    assert [r["Region"] for r in _resolved(primary, secret["ReplicaRegions"])] == [
        "ap-northeast-1",
        "us-east-1",
    ]
    owner = _stacks(template, regions, PrimaryRegion="eu-west-2", PeerPageBucket="b")["us-east-1"]
    origins = owner.resources()["PageDistribution"]["Properties"]["DistributionConfig"]["Origins"]
    assert owner.resolve(origins[1]["DomainName"]) == "b.s3.eu-west-2.amazonaws.com"

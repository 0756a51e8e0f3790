"""Create what CloudFormation would: each region's tables (from template.yaml) in the moto server,
and the Route 53 hosted zone, health checks and latency records of the template's domain part."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from localcloud.template import Template

STACK_NAME = "resilient-chat"
CONNECTIONS = "ConnectionsTable"
MESSAGES = "MessagesTable"


def client(service: str, endpoint: str, region: str) -> Any:
    factory: Any = boto3.client  # typed per service name; this helper serves several
    return factory(
        service,
        region_name=region,
        endpoint_url=endpoint,
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - moto ignores them
        config=Config(retries={"mode": "standard"}),
    )


def table_names(template: Template) -> dict[str, str]:
    """Local physical names: the messages table's from its parameter, the connections table's
    as CloudFormation would make it (stack name, logical id)."""
    return {
        MESSAGES: template.parameter_defaults()["MessagesTableName"],
        CONNECTIONS: f"{STACK_NAME}-{CONNECTIONS}",
    }


def create_tables(template: Template, endpoint: str, region: str) -> dict[str, str]:
    """Both tables in one region; an existing table is left as it is. Returns the stream ARN."""
    dynamodb = client("dynamodb", endpoint, region)
    names = table_names(template)
    existing = set(dynamodb.list_tables()["TableNames"])
    for logical_id, name in names.items():
        if name not in existing:
            dynamodb.create_table(TableName=name, **template.table(logical_id))
            ttl = template.ttl_attribute(logical_id)
            if ttl:
                dynamodb.update_time_to_live(
                    TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl}
                )
    stream_arn: str = dynamodb.describe_table(TableName=names[MESSAGES])["Table"]["LatestStreamArn"]
    return {"messages": names[MESSAGES], "connections": names[CONNECTIONS], "stream": stream_arn}


@dataclass(frozen=True)
class RegionEndpoint:
    region: str
    host: str
    port: int


def create_routing(
    template: Template, endpoint: str, domain: str, regions: list[RegionEndpoint], failure_threshold: int
) -> dict[str, Any]:
    """The hosted zone, one health check per region on that region's own HTTP endpoint, and
    latency records for the API and WebSocket names, as the template's domain part describes."""
    route53 = client("route53", endpoint, "us-east-1")
    zone = route53.create_hosted_zone(Name=domain, CallerReference=f"resilient-chat-{domain}")
    zone_id = zone["HostedZone"]["Id"].split("/")[-1]
    spec = template.health_check
    checks: dict[str, str] = {}
    changes = []
    for region in regions:
        check = route53.create_health_check(
            CallerReference=f"resilient-chat-{region.region}",
            HealthCheckConfig={
                "Type": "HTTP",  # HTTPS in AWS; the local endpoints speak plain HTTP on loopback
                "IPAddress": region.host,
                "Port": region.port,
                "ResourcePath": spec["ResourcePath"],
                "RequestInterval": int(spec["RequestInterval"]),
                "FailureThreshold": failure_threshold,
            },
        )
        check_id = check["HealthCheck"]["Id"]
        checks[region.region] = check_id
        route53.change_tags_for_resource(
            ResourceType="healthcheck",
            ResourceId=check_id,
            AddTags=[{"Key": "Name", "Value": f"{STACK_NAME} {region.region} /health"}],
        )
        for prefix in ("api", "ws"):
            changes.append(
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": f"{prefix}.{domain}.",
                        "Type": "A",
                        "SetIdentifier": f"{STACK_NAME}-{region.region}-{prefix}",
                        "Region": region.region,
                        "HealthCheckId": check_id,
                        "TTL": 60,
                        "ResourceRecords": [{"Value": region.host}],
                    },
                }
            )
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    return {"hostedZoneId": zone_id, "healthChecks": checks}

"""Create what CloudFormation would: each region's tables and queues (from template.yaml) in the
moto server, the stacks' Secrets Manager secrets with their replicas, and the Route 53 hosted zone,
health checks and latency records of the template's domain part."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from stack_definition.routing import ROUTE53_REGION
from stack_definition.template import CONNECTIONS, MESSAGES, Template, table_names


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


def create_secrets(template: Template, endpoint: str) -> dict[str, str]:
    """Every secret a region's stack makes (the session signing key: the primary region's, with a
    replica in the other region under the same name), its value generated as CloudFormation's
    `GenerateSecretString` does. Returns each secret's name by logical id."""
    names: dict[str, str] = {}
    for region in template.regions:
        ctx = template.context(region)
        for logical_id, resource in ctx.resources().items():
            if resource["Type"] != "AWS::SecretsManager::Secret":
                continue
            props = ctx.resolve(resource["Properties"])
            secretsmanager = client("secretsmanager", endpoint, region)
            secretsmanager.create_secret(
                Name=props["Name"],
                Description=props.get("Description", ""),
                SecretString=_generated_secret(secretsmanager, props["GenerateSecretString"]),
                AddReplicaRegions=[
                    {"Region": replica["Region"]} for replica in props.get("ReplicaRegions", [])
                ],
                Tags=props.get("Tags", []),
            )
            names[logical_id] = props["Name"]
    return names


def _generated_secret(secretsmanager: Any, spec: dict[str, Any]) -> str:
    """`GenerateSecretString`: a random password with GetRandomPassword's options (the same names),
    alone, or put under `GenerateStringKey` in the `SecretStringTemplate` JSON."""
    options = {k: v for k, v in spec.items() if k not in ("SecretStringTemplate", "GenerateStringKey")}
    password: str = secretsmanager.get_random_password(**options)["RandomPassword"]
    if "GenerateStringKey" not in spec:
        return password
    return json.dumps({**json.loads(spec["SecretStringTemplate"]), spec["GenerateStringKey"]: password})


@dataclass(frozen=True)
class QueueEndpoint:
    url: str  # what Ref gives for a queue
    arn: str


def create_queues(template: Template, endpoint: str, region: str) -> dict[str, QueueEndpoint]:
    """Every queue of the template in one region, named as CloudFormation would (stack name,
    logical id), dead-letter queues before the queues that redrive to them; an existing queue is
    kept (CreateQueue with the same attributes is idempotent)."""
    sqs = client("sqs", endpoint, region)
    made: dict[str, QueueEndpoint] = {}
    for queue in sorted(template.queues.values(), key=lambda q: q.dead_letter_queue is not None):
        attributes = {
            "VisibilityTimeout": str(queue.visibility_timeout),
            "MessageRetentionPeriod": str(queue.retention),
        }
        if queue.dead_letter_queue is not None:
            attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": made[queue.dead_letter_queue].arn,
                    "maxReceiveCount": queue.max_receive_count,
                }
            )
        url = sqs.create_queue(QueueName=f"{template.stack_name}-{queue.logical_id}", Attributes=attributes)[
            "QueueUrl"
        ]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        made[queue.logical_id] = QueueEndpoint(url, arn)
    return made


@dataclass(frozen=True)
class RegionEndpoint:
    region: str
    host: str
    port: int


def create_routing(
    template: Template, endpoint: str, domain: str, regions: list[RegionEndpoint], failure_threshold: int
) -> dict[str, Any]:
    """The hosted zone, and per region what that region's stack makes with a domain: its health
    check on its own HTTP endpoint and its latency records, resolved from the template."""
    route53 = client("route53", endpoint, ROUTE53_REGION)
    zone = route53.create_hosted_zone(Name=domain, CallerReference=f"{template.stack_name}-{domain}")
    zone_id = zone["HostedZone"]["Id"].split("/")[-1]
    parameters = {
        "DomainName": domain,
        "HostedZoneId": zone_id,
        "HealthCheckFailureThreshold": failure_threshold,
    }
    checks: dict[str, str] = {}
    changes = []
    for region in regions:
        apis = template.api_ids(region.region)
        spec = template.endpoint_health_check(template.context(region.region, parameters, apis))
        config = spec["HealthCheckConfig"]
        check = route53.create_health_check(
            CallerReference=f"{template.stack_name}-{region.region}",
            HealthCheckConfig={
                "Type": "HTTP",  # HTTPS in AWS; the local endpoints speak plain HTTP on loopback
                "IPAddress": region.host,
                "Port": region.port,
                "ResourcePath": config["ResourcePath"],
                "RequestInterval": int(config["RequestInterval"]),
                "FailureThreshold": int(config["FailureThreshold"]),
            },
        )
        check_id = check["HealthCheck"]["Id"]
        checks[region.region] = check_id
        route53.change_tags_for_resource(
            ResourceType="healthcheck", ResourceId=check_id, AddTags=spec.get("HealthCheckTags", [])
        )
        # Every health check the records name is this one probe locally (docs/local.md says why).
        names = apis | dict.fromkeys(template.health_checks, check_id)
        # The regional custom domains the alias records point at are the region's own endpoints here.
        domains = {
            f"{name}.{attribute}": value
            for name in template.custom_domains
            for attribute, value in (("RegionalDomainName", region.host), ("RegionalHostedZoneId", zone_id))
        }
        records = template.latency_records(template.context(region.region, parameters, names, domains))
        changes += [{"Action": "UPSERT", "ResourceRecordSet": record} for record in records]
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})
    return {"hostedZoneId": zone_id, "healthChecks": checks}

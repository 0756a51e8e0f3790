"""`make deploy ARGS=--dry-run`: every AWS call make deploy would make, printed instead of made.

It needs no credentials and cannot read the account, so it imagines a first deploy in a new account
(no stacks, Lambda's default quota, no API Gateway logging role), with what only AWS can tell as
<placeholders>.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class DryRunCloud:
    """Prints each AWS call instead of making it, and imagines AWS's answers for a first deploy.

    It knows what template.yaml's outputs look like; values only AWS can give are <placeholders>.
    """

    stack_name: str
    out: Callable[[str], None] = print
    stacks: dict[str, dict[str, str]] = field(default_factory=dict)
    buckets: dict[str, dict[str, str]] = field(default_factory=dict)
    # The template's OwnsPageDistribution condition (tests/template/test_deploy.py checks it).
    page_region: str = "us-east-1"

    def call(self, service: str, operation: str, region: str, **parameters: object) -> None:
        shown = " ".join(f"{name}={value}" for name, value in parameters.items())
        self.out(f"aws {service} {operation} --region {region} {shown}")

    def sam(self, args: list[str]) -> None:
        self.out(f"sam {shlex.join(args)}")
        if args[0] == "deploy":
            self.out(
                "    (sam: CloudFormation CreateChangeSet, DescribeChangeSet, ExecuteChangeSet, then "
                "DescribeStacks/DescribeStackEvents until done; S3 PutObject of changed artifacts "
                "into SAM's managed bucket, created by a first deploy as stack aws-sam-cli-managed-default)"
            )
            region = args[args.index("--region") + 1]
            overrides = args[
                args.index("--parameter-overrides") + 1 : args.index("--no-fail-on-empty-changeset")
            ]
            parameters = dict(item.split("=", 1) for item in overrides)
            self.stacks[region] = self.imagined_outputs(region, parameters.get("DomainName", '""').strip('"'))

    def imagined_outputs(self, region: str, domain: str) -> dict[str, str]:
        outputs = {
            "HttpApiUrl": f"https://<HttpApi id in {region}>.execute-api.{region}.amazonaws.com",
            "WebSocketUrl": f"wss://<WebSocketApi id in {region}>.execute-api.{region}.amazonaws.com/prod",
            "PageBucketName": f"{self.stack_name}-page-<account id>-{region}",
            "AlarmNotifications": f"<where alarms go: the AlarmNotifications output in {region}>",
        }
        if domain:
            outputs |= {
                "HttpCustomDomainUrl": f"https://api.{domain}",
                "WebSocketCustomDomainUrl": f"wss://ws.{domain}",
            }
        if region == self.page_region:
            url = f"https://chat.{domain}" if domain else "https://<distribution>.cloudfront.net"
            outputs |= {"PageDistributionId": "<PageDistributionId>", "PageUrl": url}
        return outputs

    def stack_outputs(self, region: str) -> dict[str, str] | None:
        self.call("cloudformation", "DescribeStacks", region, StackName=self.stack_name)
        return self.stacks.get(region)

    def list_page(self, region: str, bucket: str) -> dict[str, str]:
        self.call("s3", "ListObjectsV2", region, Bucket=bucket)
        return dict(self.buckets.get(bucket, {}))

    def put_page_file(self, region: str, bucket: str, key: str, body: bytes, content_type: str) -> None:
        self.call("s3", "PutObject", region, Bucket=bucket, Key=key, ContentType=shlex.quote(content_type))
        self.buckets.setdefault(bucket, {})[key] = hashlib.md5(body, usedforsecurity=False).hexdigest()

    def delete_page_files(self, region: str, bucket: str, keys: list[str]) -> None:
        self.call("s3", "DeleteObjects", region, Bucket=bucket, Keys=",".join(keys))
        for key in keys:
            self.buckets.get(bucket, {}).pop(key, None)

    def invalidate(self, distribution_id: str, paths: list[str]) -> None:
        self.call(
            "cloudfront",
            "CreateInvalidation",
            "us-east-1",
            DistributionId=distribution_id,
            Paths=",".join(paths),
        )

    # A new account: Lambda's default quota, and no API Gateway logging role set anywhere yet.
    def account_concurrency(self, region: str) -> int:
        self.call("lambda", "GetAccountSettings", region)
        return 1000

    def api_log_role(self, region: str) -> str | None:
        self.call("apigateway", "GetAccount", region)
        return None

    def role_arn(self, name: str) -> str | None:
        self.call("iam", "GetRole", "us-east-1", RoleName=name)
        return None

    def create_api_log_role(self, name: str) -> str:
        self.call("iam", "CreateRole", "us-east-1", RoleName=name)
        self.call(
            "iam",
            "AttachRolePolicy",
            "us-east-1",
            RoleName=name,
            PolicyArn="AmazonAPIGatewayPushToCloudWatchLogs",
        )
        return f"arn:aws:iam::<account id>:role/{name}"

    def set_api_log_role(self, region: str, arn: str) -> bool:
        self.call("apigateway", "UpdateAccount", region, cloudwatchRoleArn=arn)
        return True

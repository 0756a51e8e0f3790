"""`make delete` (scripts/delete.sh) against a moto server on 127.0.0.1, with a stand-in `sam`.

The stand-in does what the real `sam` would ask of CloudFormation here: `delete` deletes the stack,
its page bucket (which fails while the bucket holds objects, as CloudFormation's delete would) and,
for the primary's stack, the messages table in both regions (which fails while a replica's deletion
protection is on) and the session secret (which fails while it has a replica, as Secrets Manager's
delete does).

The stacks have no outputs, as a stack whose first create failed has none: make delete must find
what to remove from the stack's resources.

moto keeps its state per process, shared with any other test's moto server: every test uses names
of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from tests.template.cfn import ROOT

PRIMARY, SECONDARY = "us-east-1", "eu-west-2"

FAKE_SAM = """#!{python}
import json, sys
import boto3

args = sys.argv[1:]
with open({log!r}, "a") as log:
    log.write(" ".join(args) + "\\n")
region, stack = args[args.index("--region") + 1], args[args.index("--stack-name") + 1]
cloudformation = boto3.client("cloudformation", region_name=region)
summaries = cloudformation.list_stack_resources(StackName=stack)["StackResourceSummaries"]
resources = {{r["LogicalResourceId"]: r["PhysicalResourceId"] for r in summaries}}
if args[0] == "delete":
    bucket = resources["PageBucket"]
    if boto3.client("s3", region_name=region).list_objects_v2(Bucket=bucket).get("KeyCount"):
        sys.exit(f"DELETE_FAILED: bucket {{bucket}} is not empty")
    if "MessagesTable" in resources:
        for replica in ({primary!r}, {secondary!r}):
            dynamodb = boto3.client("dynamodb", region_name=replica)
            table = dynamodb.describe_table(TableName=resources["MessagesTable"])["Table"]
            if table.get("DeletionProtectionEnabled"):
                sys.exit(f"DELETE_FAILED: deletion protection on the table in {{replica}}")
        # Secrets Manager refuses this while the secret has a replica.
        boto3.client("secretsmanager", region_name=region).delete_secret(
            SecretId=stack + "/session-keys", ForceDeleteWithoutRecovery=True
        )
        # The replica goes with the global table (moto's stack delete removes this region's table).
        boto3.client("dynamodb", region_name={secondary!r}).delete_table(TableName=resources["MessagesTable"])
    cloudformation.delete_stack(StackName=stack)
"""


@dataclass
class World:
    env: dict[str, str]
    sam_log: Path
    stack: str
    table: str

    def client(self, service: str, region: str) -> Any:
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.env["AWS_ENDPOINT_URL"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def deploy(self) -> None:
        """Both regions' stacks (as far as delete cares, and without outputs), the protected global
        table's replicas and the session secret with its replica."""
        key = {
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        }
        for region in (PRIMARY, SECONDARY):
            resources: dict[str, Any] = {
                "PageBucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": self.bucket(region)}}
            }
            if region == PRIMARY:
                table = {"Type": "AWS::DynamoDB::Table", "Properties": {"TableName": self.table, **key}}
                resources["MessagesTable"] = table
            self.client("cloudformation", region).create_stack(
                StackName=self.stack, TemplateBody=json.dumps({"Resources": resources})
            )
            dynamodb = self.client("dynamodb", region)
            if region == PRIMARY:
                dynamodb.update_table(TableName=self.table, DeletionProtectionEnabled=True)
            else:
                dynamodb.create_table(TableName=self.table, DeletionProtectionEnabled=True, **key)
            s3 = self.client("s3", region)
            for name in ("index.html", "app.js", "config.json"):
                s3.put_object(Bucket=self.bucket(region), Key=name, Body=b"page")
        self.client("secretsmanager", PRIMARY).create_secret(
            Name=f"{self.stack}/session-keys", SecretString="{}", AddReplicaRegions=[{"Region": SECONDARY}]
        )

    def bucket(self, region: str) -> str:
        return f"{self.stack}-page-123456789012-{region}"

    def make_delete(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "scripts/delete.sh"], cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120
        )

    def sam_calls(self) -> list[str]:
        return self.sam_log.read_text().splitlines() if self.sam_log.exists() else []


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    sam = tmp_path / "sam"
    log = tmp_path / "sam.log"
    sam.write_text(FAKE_SAM.format(python=sys.executable, log=str(log), primary=PRIMARY, secondary=SECONDARY))
    sam.chmod(0o755)
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "BOTO"))} | {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "SAM": str(sam),
    }
    name = f"rc-{uuid.uuid4().hex[:12]}"
    yield World(env | {"STACK_NAME": name}, log, stack=name, table=f"{name}-messages")
    server.stop()


def _with_dummy_credentials(world: World) -> None:
    world.env |= {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def test_given_no_credentials_when_deleting_then_it_fails_loudly_and_deletes_nothing(world: World) -> None:
    world.deploy()
    run = world.make_delete()
    assert run.returncode != 0
    assert "credentials" in run.stderr.lower()
    assert "nothing to delete" not in run.stdout
    assert not [call for call in world.sam_calls() if call.startswith("delete")]
    assert world.client("cloudformation", PRIMARY).describe_stacks(StackName=world.stack)["Stacks"]


def test_given_no_stack_in_either_region_when_deleting_then_both_are_reported_absent(world: World) -> None:
    _with_dummy_credentials(world)
    run = world.make_delete()
    assert run.returncode == 0, run.stderr
    for region in (SECONDARY, PRIMARY):
        assert f"{world.stack} does not exist in {region} (nothing to delete)" in run.stdout
    assert world.sam_calls() == []


def test_given_both_stacks_when_deleting_then_protection_goes_off_on_purpose_and_everything_goes(
    world: World,
) -> None:
    world.deploy()
    _with_dummy_credentials(world)
    run = world.make_delete()
    assert run.returncode == 0, run.stderr
    for region in (PRIMARY, SECONDARY):
        assert f"switching deletion protection OFF for {world.table} in {region}" in run.stdout
        assert f"emptying the chat page's bucket {world.bucket(region)} in {region} (3 objects)" in run.stdout
        buckets = world.client("s3", region).list_buckets()["Buckets"]
        assert world.bucket(region) not in {bucket["Name"] for bucket in buckets}
        assert world.table not in world.client("dynamodb", region).list_tables()["TableNames"]
        with pytest.raises(ClientError, match="does not exist"):
            world.client("cloudformation", region).describe_stacks(StackName=world.stack)
    assert f"deleting the replicas of secret {world.stack}/session-keys ({SECONDARY})" in run.stdout
    with pytest.raises(ClientError, match="ResourceNotFound"):
        world.client("secretsmanager", PRIMARY).describe_secret(SecretId=f"{world.stack}/session-keys")
    deletes = [
        call.split("--region ")[1].split()[0] for call in world.sam_calls() if call.startswith("delete")
    ]
    # The primary first: its distribution names the other region's bucket, which must outlive it.
    assert deletes == [PRIMARY, SECONDARY]
    leaves = run.stdout.split("make delete leaves:")[1]
    for left in (
        "aws-sam-cli-managed-default",
        "backup",
        "KMS",
        "validation",
        "resilient-chat-apigateway-logs",
    ):
        assert left in leaves


def test_given_both_stacks_when_dry_running_delete_then_it_says_what_would_go_and_changes_nothing(
    world: World,
) -> None:
    world.deploy()
    _with_dummy_credentials(world)
    run = subprocess.run(
        ["bash", "scripts/delete.sh", "--dry-run"],
        cwd=ROOT,
        env=world.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert f"switching deletion protection OFF for {world.table} in {PRIMARY}" in run.stdout
    assert f"sam delete {world.stack} in {SECONDARY}" in run.stdout
    assert world.sam_calls() == []
    for region in (PRIMARY, SECONDARY):
        objects = world.client("s3", region).list_objects_v2(Bucket=world.bucket(region))
        assert objects["KeyCount"] == 3
        described = world.client("dynamodb", region).describe_table(TableName=world.table)["Table"]
        assert described["DeletionProtectionEnabled"] is True
    secret = world.client("secretsmanager", PRIMARY).describe_secret(SecretId=f"{world.stack}/session-keys")
    assert [replica["Region"] for replica in secret["ReplicationStatus"]] == [SECONDARY]

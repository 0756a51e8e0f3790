"""`make delete` (scripts/delete.sh) against a moto server on 127.0.0.1, with a stand-in `sam`.

The stand-in does what the real `sam` would ask of CloudFormation here: `delete` deletes the stack,
its page bucket (which fails while the bucket holds objects, as CloudFormation's delete would) and,
for the primary's stack, the messages table in both regions (which fails while a replica's deletion
protection is on).

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
(found,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
outputs = {{o["OutputKey"]: o["OutputValue"] for o in found.get("Outputs", [])}}
if args[0] == "delete":
    boto3.client("s3", region_name=region).delete_bucket(Bucket=outputs["PageBucketName"])
    if outputs.get("IsPrimaryRegion") == "true":
        for replica in ({primary!r}, {secondary!r}):
            boto3.client("dynamodb", region_name=replica).delete_table(TableName=outputs["MessagesTableName"])
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
        """Both regions' stacks (as far as delete cares) and the protected global table's replicas."""
        for region in (PRIMARY, SECONDARY):
            body = {
                "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
                "Outputs": {
                    "IsPrimaryRegion": {"Value": "true" if region == PRIMARY else "false"},
                    "MessagesTableName": {"Value": self.table},
                    "PageBucketName": {"Value": self.bucket(region)},
                },
            }
            self.client("cloudformation", region).create_stack(
                StackName=self.stack, TemplateBody=json.dumps(body)
            )
            self.client("dynamodb", region).create_table(
                TableName=self.table,
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                DeletionProtectionEnabled=True,
            )
            s3 = self.client("s3", region)
            location = {} if region == "us-east-1" else {"LocationConstraint": region}
            s3.create_bucket(Bucket=self.bucket(region), CreateBucketConfiguration=location)
            for key in ("index.html", "app.js", "config.json"):
                s3.put_object(Bucket=self.bucket(region), Key=key, Body=b"page")

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
    deletes = [
        call.split("--region ")[1].split()[0] for call in world.sam_calls() if call.startswith("delete")
    ]
    assert deletes == [SECONDARY, PRIMARY]
    leaves = run.stdout.split("make delete leaves:")[1]
    for left in ("aws-sam-cli-managed-default", "backup", "KMS", "validation"):
        assert left in leaves

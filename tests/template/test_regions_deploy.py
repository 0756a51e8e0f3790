"""`make deploy` and `make delete` with a third region: REPLICA_REGIONS names it, and nothing else
changes (samconfig.toml needs no env for it)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from scripts.deploy import DeployError, Settings
from tests.template.cfn import ROOT
from tests.template.test_delete import World, _with_dummy_credentials, world  # noqa: F401 - the fixture
from tests.template.test_deploy import _calls, _clean_environment, _deploys

THREE = ("us-east-1", "eu-west-2", "ap-northeast-1")


def _dry_run(tmp_path: Path, target: str, **environment: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", target, "ARGS=--dry-run"],
        cwd=ROOT,
        env=_clean_environment(tmp_path) | environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_given_three_regions_when_dry_running_make_deploy_then_the_primary_goes_first_and_all_learn_all(
    tmp_path: Path,
) -> None:
    run = _dry_run(tmp_path, "deploy", REPLICA_REGIONS=",".join(THREE))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    deploys = _deploys(lines)
    # In ReplicaRegions' order, the primary first; then again each stack that learned a later
    # one's outputs (the last one has learned them all already).
    assert [region for region, _ in deploys] == [*THREE, "us-east-1", "eu-west-2"]
    final = dict(deploys)
    for region, parameters in final.items():
        assert parameters["ReplicaRegions"] == '"us-east-1,eu-west-2,ap-northeast-1"', region
        assert parameters["PrimaryRegion"] == '"us-east-1"', region
        others = [other for other in THREE if other != region]
        for other in others:  # the page's CSP admits every other region's APIs
            assert f"https://<HttpApi id in {other}>" in parameters["PeerConnectSources"], region
            assert f"wss://<WebSocketApi id in {other}>" in parameters["PeerConnectSources"], region
        # The page's failover bucket: the first other region listed (CloudFront's origin group has two).
        assert parameters["PeerPageBucket"] == f'"resilient-chat-page-<account id>-{others[0]}"', region
    # Every region gets the page, its API Gateway logging role, and its quota checked.
    calls = _calls(lines)
    for region in THREE:
        assert ("s3", "ListObjectsV2", region) in calls
        assert ("lambda", "GetAccountSettings", region) in calls
        assert ("apigateway", "UpdateAccount", region) in calls
    # The third region has no samconfig env of its own: the default env's settings, its own region.
    sam_deploys = [line for line in lines if line.startswith("sam deploy ")]
    assert all("--config-env default" in line for line in sam_deploys if "--region ap-northeast-1" in line)
    assert all("--config-env us-east-1" in line for line in sam_deploys if "--region us-east-1" in line)


@pytest.mark.parametrize(
    ("regions", "why"),
    [
        ("us-east-1,eu-west-2,ap-northeast-1,ap-southeast-2,sa-east-1,eu-central-1", "2 to 5"),
        ("us-east-1", "2 to 5"),
        ("us-east-1,eu-west-2,us-east-1", "2 to 5"),
        ("eu-west-2,ap-northeast-1", "must include us-east-1"),
        ("us-east-1,Tokyo", "regions such as us-east-1"),
    ],
)
def test_given_regions_the_template_cannot_take_when_deploying_then_it_refuses_before_any_call(
    regions: str, why: str
) -> None:
    with pytest.raises(DeployError, match=why):
        Settings.from_environment({"REPLICA_REGIONS": regions})


def test_given_a_primary_outside_the_regions_when_deploying_then_it_refuses() -> None:
    with pytest.raises(DeployError, match="must include ap-northeast-1"):
        Settings.from_environment(
            {"REPLICA_REGIONS": "us-east-1,eu-west-2", "PRIMARY_REGION": "ap-northeast-1"}
        )


def test_given_five_regions_then_the_deploy_order_is_the_primary_then_the_list() -> None:
    five = "eu-west-2,us-east-1,ap-northeast-1,ap-southeast-2,sa-east-1"
    settings = Settings.from_environment({"REPLICA_REGIONS": five, "PRIMARY_REGION": "us-east-1"})
    assert settings.regions == ("us-east-1", "eu-west-2", "ap-northeast-1", "ap-southeast-2", "sa-east-1")
    assert settings.parameters["ReplicaRegions"] == five


def test_given_three_stacks_when_dry_running_make_delete_then_all_three_go_primary_first_and_nothing_changes(
    world: World,  # noqa: F811 - the fixture
) -> None:
    world.deploy()
    third = "ap-northeast-1"
    world.client("cloudformation", third).create_stack(
        StackName=world.stack,
        TemplateBody=f'{{"Resources": {{"PageBucket": {{"Type": "AWS::S3::Bucket", '
        f'"Properties": {{"BucketName": "{world.bucket(third)}"}}}}}}}}',
    )
    world.client("dynamodb", third).create_table(
        TableName=world.table,
        DeletionProtectionEnabled=True,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    _with_dummy_credentials(world)
    run = subprocess.run(
        ["bash", "scripts/delete.sh", "--dry-run"],
        cwd=ROOT,
        env=world.env | {"REPLICA_REGIONS": ",".join(THREE)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    for region in THREE:
        assert f"switching deletion protection OFF for {world.table} in {region}" in run.stdout
    order = [line.split(" in ")[-1] for line in run.stdout.splitlines() if line.startswith("== sam delete ")]
    assert order == list(THREE)
    assert world.sam_calls() == []
    described = world.client("dynamodb", third).describe_table(TableName=world.table)["Table"]
    assert described["DeletionProtectionEnabled"] is True

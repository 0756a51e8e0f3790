"""`make deploy`: the order of deploys, the values each stack learns from the other, the page upload,
and the dry run (every AWS call, in order, without credentials)."""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from scripts.api_logging import ROLE_NAME
from scripts.deploy import Settings, deploy, learned_parameters
from scripts.dry_run import DryRunCloud
from tests.template.cfn import ROOT, Template, stack_in

PRIMARY, SECONDARY = "us-east-1", "eu-west-2"
PAGE_KEYS = sorted(p.name for p in (ROOT / "frontend").iterdir() if p.suffix in {".html", ".js", ".css"})


def _calls(lines: list[str]) -> list[tuple[str, str, str]]:
    """(tool or service, operation, region) of each call a run printed."""
    calls = []
    for line in lines:
        if not line.startswith(("sam ", "aws ")):
            continue
        words = shlex.split(line)
        if words[:1] == ["sam"]:
            region = words[words.index("--region") + 1] if "--region" in words else "-"
            calls.append(("sam", words[1], region))
        elif words[:1] == ["aws"]:
            calls.append((words[1], words[2], words[words.index("--region") + 1]))
    return calls


def _deploys(lines: list[str]) -> list[tuple[str, dict[str, str]]]:
    """Each `sam deploy`'s region and parameter overrides, in order."""
    deploys = []
    for line in lines:
        if not line.startswith("sam deploy "):
            continue
        words = shlex.split(line)
        if words[:2] == ["sam", "deploy"]:
            start, end = words.index("--parameter-overrides") + 1, words.index("--no-fail-on-empty-changeset")
            overrides = dict(word.split("=", 1) for word in words[start:end])
            deploys.append((words[words.index("--region") + 1], overrides))
    return deploys


def _puts(lines: list[str], region: str) -> list[str]:
    return [
        word.removeprefix("Key=")
        for line in lines
        if line.startswith(f"aws s3 PutObject --region {region} ")
        for word in shlex.split(line)
        if word.startswith("Key=")
    ]


def _clean_environment(tmp_path: Path) -> dict[str, str]:
    """No AWS variable, no credentials file, no instance metadata: any real AWS call would fail."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def test_given_no_credentials_when_dry_running_make_deploy_then_it_prints_a_first_deploys_calls_in_order(
    tmp_path: Path,
) -> None:
    config = ROOT / ".aws-sam" / "config.json"
    before = config.read_bytes() if config.exists() else None
    run = subprocess.run(
        ["make", "--no-print-directory", "deploy", "ARGS=--dry-run"],
        cwd=ROOT,
        env=_clean_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    describe = ("cloudformation", "DescribeStacks")
    s3_upload = [("s3", "ListObjectsV2"), *[("s3", "PutObject")] * (len(PAGE_KEYS) + 1)]
    log_role = [("apigateway", "GetAccount"), ("apigateway", "UpdateAccount")]
    assert _calls(lines) == [
        ("sam", "build", "-"),
        ("lambda", "GetAccountSettings", PRIMARY),  # the page workers' cap against the quota
        ("lambda", "GetAccountSettings", SECONDARY),
        # API Gateway's logging role, an account setting, before any stack: none set yet in a new
        # account, so the deployment's one role is made once and set in both regions.
        (*log_role[0], PRIMARY),
        ("iam", "GetRole", "us-east-1"),
        ("iam", "CreateRole", "us-east-1"),
        ("iam", "AttachRolePolicy", "us-east-1"),
        (*log_role[1], PRIMARY),
        (*log_role[0], SECONDARY),
        (*log_role[1], SECONDARY),
        (*describe, PRIMARY),
        (*describe, SECONDARY),
        ("sam", "deploy", PRIMARY),  # creates the global table and the distribution
        (*describe, PRIMARY),
        ("sam", "deploy", SECONDARY),
        (*describe, SECONDARY),
        ("sam", "deploy", PRIMARY),  # again: now it knows the other region's APIs and its own page
        (*describe, PRIMARY),
        *[(*call, PRIMARY) for call in s3_upload],
        *[(*call, SECONDARY) for call in s3_upload],
        ("cloudfront", "CreateInvalidation", "us-east-1"),
    ]
    assert f"RoleName={ROLE_NAME}" in next(line for line in lines if "CreateRole" in line)
    (first, created), (second, learned), (third, relearned) = _deploys(lines)
    assert (first, second, third) == (PRIMARY, SECONDARY, PRIMARY)
    # The first create may roll back (delete) its table; every deploy after it protects the table.
    assert created["MessagesDeletionProtection"] == '"false"'
    assert relearned["MessagesDeletionProtection"] == '"true"'
    # The page's failover origin only once the other stack exists and reports its bucket.
    assert "PeerPageBucket" not in created
    assert relearned["PeerPageBucket"] == '"resilient-chat-page-<account id>-eu-west-2"'
    assert learned["PageDistributionId"] == relearned["PageDistributionId"] == '"<PageDistributionId>"'
    assert "<HttpApi id in eu-west-2>" in relearned["PeerConnectSources"]
    assert relearned["AllowedOrigin"] == learned["AllowedOrigin"] == '"https://<distribution>.cloudfront.net"'
    for region in (PRIMARY, SECONDARY):
        assert sorted(_puts(lines, region)) == sorted([*PAGE_KEYS, "config.json"])
        assert _puts(lines, region)[-1] == "index.html"  # never a page before its scripts
    (invalidation,) = (line for line in lines if "CreateInvalidation" in line)
    paths = invalidation.split("Paths=")[1].split(",")
    assert sorted(paths) == sorted(["/", "/config.json", *(f"/{key}" for key in PAGE_KEYS)])
    assert lines[-1] == "== the chat page: https://<distribution>.cloudfront.net"
    assert (config.read_bytes() if config.exists() else None) == before, "a dry run writes nothing"


def test_given_the_dry_runs_imagined_stacks_then_the_distribution_is_where_the_template_puts_it(
    template: Template,
) -> None:
    owner = DryRunCloud("resilient-chat").page_region
    assert [r for r in (PRIMARY, SECONDARY) if stack_in(template, r).condition("OwnsPageDistribution")] == [
        owner
    ]


def _settings(frontend: Path, **environment: str) -> Settings:
    settings = Settings.from_environment(environment)
    return Settings(
        settings.stack_name, settings.primary, settings.secondary, settings.parameters, frontend, None
    )


@pytest.fixture
def frontend(tmp_path: Path) -> Path:
    copy = tmp_path / "frontend"
    shutil.copytree(ROOT / "frontend", copy)
    return copy


@pytest.mark.parametrize("existing", [(), (PRIMARY,), (SECONDARY,), (PRIMARY, SECONDARY)])
def test_given_any_stacks_already_there_when_deploying_then_each_ends_with_what_the_others_outputs_say(
    frontend: Path, existing: tuple[str, ...]
) -> None:
    lines: list[str] = []
    cloud = DryRunCloud("resilient-chat", out=lines.append)
    for region in existing:  # e.g. the secondary deployed first, by hand
        cloud.stacks[region] = cloud.imagined_outputs(region, domain="")
    settings = _settings(frontend)
    deploy(cloud, settings)
    last = dict(_deploys(lines))
    assert last.keys() == {PRIMARY, SECONDARY}
    for region, parameters in last.items():
        expected = learned_parameters(region, dict(cloud.stacks), PRIMARY) | settings.parameters
        assert parameters == {name: f'"{value}"' for name, value in expected.items()}, region
        assert {
            "PageDistributionId",
            "AllowedOrigin",
            "PeerConnectSources",
            "PeerPageBucket",
        } <= parameters.keys()
        assert parameters["MessagesDeletionProtection"] == '"true"', region
    assert len(_deploys(lines)) <= 3


def test_given_a_deployed_page_when_deploying_again_then_nothing_changes_and_nothing_is_invalidated(
    frontend: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines: list[str] = []
    cloud = DryRunCloud("resilient-chat", out=lines.append)
    settings = _settings(frontend, DOMAIN_NAME="example.com", HOSTED_ZONE_ID="Z0123456789ABC")
    deploy(cloud, settings)
    final = dict(_deploys(lines))
    lines.clear()
    deploy(cloud, settings)
    # One no-op deploy per stack, with exactly the values it already has; no upload.
    assert _deploys(lines) == [(PRIMARY, final[PRIMARY]), (SECONDARY, final[SECONDARY])]
    assert final[SECONDARY]["AllowedOrigin"] == '"https://chat.example.com"'
    assert not [call for call in _calls(lines) if call[1] in {"PutObject", "CreateInvalidation"}]
    assert capsys.readouterr().out.splitlines()[-1] == "== the chat page: https://chat.example.com"


def test_given_a_changed_and_a_removed_file_when_deploying_then_only_those_are_touched_and_invalidated(
    frontend: Path,
) -> None:
    lines: list[str] = []
    cloud = DryRunCloud("resilient-chat", out=lines.append)
    settings = _settings(frontend)
    deploy(cloud, settings)
    (frontend / "app.js").write_text("// a new version\n")
    (frontend / "ulid.js").unlink()
    lines.clear()
    deploy(cloud, settings)
    for region in (PRIMARY, SECONDARY):
        assert _puts(lines, region) == ["app.js"]
        (removed,) = (line for line in lines if line.startswith(f"aws s3 DeleteObjects --region {region} "))
        assert removed.endswith("Keys=ulid.js")
    (invalidation,) = (line for line in lines if "CreateInvalidation" in line)
    assert invalidation.endswith("Paths=/app.js,/ulid.js")


def test_given_a_domain_without_its_zone_when_deploying_then_it_stops_before_any_call(tmp_path: Path) -> None:
    env = _clean_environment(tmp_path) | {"DOMAIN_NAME": "example.com"}
    run = subprocess.run(
        ["bash", "scripts/deploy.sh", "--dry-run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    assert "HOSTED_ZONE_ID" in run.stderr
    assert not _calls(run.stdout.splitlines())


def test_given_s3_when_the_page_is_uploaded_then_a_listing_shows_each_files_md5_so_unchanged_files_stay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The real adapter against a moto server on 127.0.0.1: S3's ETag is what make deploy compares."""
    from moto.server import ThreadedMotoServer

    from scripts import aws
    from scripts.deploy import CACHE_CONTROL, AwsCloud

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        for name, value in {
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }.items():
            monkeypatch.setenv(name, value)
        aws.client.cache_clear()
        bucket = f"rc-page-{os.getpid()}-eu-west-2"
        s3 = aws.client("s3", SECONDARY)
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": SECONDARY})
        cloud = AwsCloud("sam", "resilient-chat")
        body = (ROOT / "frontend" / "app.js").read_bytes()
        cloud.put_page_file(SECONDARY, bucket, "app.js", body, "text/javascript; charset=utf-8")
        assert cloud.list_page(SECONDARY, bucket) == {
            "app.js": hashlib.md5(body, usedforsecurity=False).hexdigest()
        }
        stored = s3.head_object(Bucket=bucket, Key="app.js")
        assert (stored["ContentType"], stored["CacheControl"]) == (
            "text/javascript; charset=utf-8",
            CACHE_CONTROL,
        )
        cloud.delete_page_files(SECONDARY, bucket, ["app.js"])
        assert cloud.list_page(SECONDARY, bucket) == {}
    finally:
        aws.client.cache_clear()
        server.stop()

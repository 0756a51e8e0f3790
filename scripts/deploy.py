"""`make deploy` (scripts/deploy.sh): build, deploy both regions, upload the chat page, print its URL.

    python -m scripts.deploy --sam SAM [--dry-run]

Settings come from the environment (docs/deploy.md): PRIMARY_REGION, SECONDARY_REGION, STACK_NAME,
and the optional DOMAIN_NAME, HOSTED_ZONE_ID, ALLOWED_ORIGIN, ALARM_EMAIL, PAGE_WORKER_CONCURRENCY
(a variable left unset keeps the stack's previous value; set to "" it clears it).

Before the stacks: each region's API Gateway account setting gets a CloudWatch Logs role if it has
none (scripts/api_logging.py), and the page workers' cap is checked against the account's Lambda
concurrency. A stack that CloudFormation can only delete (a failed first create) stops the deploy
with what to do: `make delete`, then `make deploy`.

The stacks need a few values from each other (the page bucket's one reader, the distribution; the
page's CSP, the other region's API hosts; the APIs' CORS, the page's origin). Each deploy passes what
the stacks' outputs say at that moment; after both, any stack whose values have changed since is
deployed again. That is one extra deploy on a first deploy and none after: repeat deploys are
no-op change sets.

--dry-run prints every AWS call in order instead of making it, and needs no credentials: it cannot
read the account, so it shows a first deploy, with the stacks' answers as <placeholders>.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from scripts import aws
from scripts.api_logging import AccountLogging, ensure_api_log_role
from scripts.aws import AwsError
from scripts.dry_run import DryRunCloud
from scripts.frontend_config import ConfigError, build_config, render
from stack_definition.template import load

ROOT = Path(__file__).resolve().parents[1]

# Environment variables that become template parameters when they are set (even to "").
ENVIRONMENT_PARAMETERS = {
    "DOMAIN_NAME": "DomainName",
    "HOSTED_ZONE_ID": "HostedZoneId",
    "ALLOWED_ORIGIN": "AllowedOrigin",
    "ALARM_EMAIL": "AlarmEmail",
    "PAGE_WORKER_CONCURRENCY": "PageWorkerConcurrency",
}
# The page workers (PageWorkerConcurrency) may take at most this share of the account's Lambda
# concurrency in a region: the rest stays for $connect, the authorizer and the other handlers.
MAX_WORKER_SHARE = 0.2

# The page's files (frontend/ has no build step); README.md and anything else stay home.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
}
# Browsers revalidate on every load (a 304 when nothing changed); CloudFront keeps a copy for a day
# unless make deploy invalidates it, which it does for every file it changes.
CACHE_CONTROL = "public, max-age=0, s-maxage=86400"


class DeployError(Exception):
    """The deploy cannot go on: say why and stop."""


class Cloud(AccountLogging, Protocol):
    """What make deploy does to AWS: sam for the stacks, then a few calls of its own."""

    def sam(self, args: list[str]) -> None: ...
    def account_concurrency(self, region: str) -> int: ...
    def stack_outputs(self, region: str) -> dict[str, str] | None: ...
    def list_page(self, region: str, bucket: str) -> dict[str, str]: ...
    def put_page_file(self, region: str, bucket: str, key: str, body: bytes, content_type: str) -> None: ...
    def delete_page_files(self, region: str, bucket: str, keys: list[str]) -> None: ...
    def invalidate(self, distribution_id: str, paths: list[str]) -> None: ...


@dataclass(frozen=True)
class Settings:
    stack_name: str
    primary: str
    secondary: str
    parameters: dict[str, str]  # from the environment: only the variables that are set
    frontend: Path = ROOT / "frontend"
    # A copy of the uploaded config.json to read (frontend/README.md); a dry run writes none.
    config_path: Path | None = ROOT / ".aws-sam" / "config.json"

    @property
    def regions(self) -> tuple[str, str]:
        # The primary first: its stack creates the global table that the other stack looks up.
        return (self.primary, self.secondary)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> Settings:
        if environ.get("DOMAIN_NAME") and not environ.get("HOSTED_ZONE_ID"):
            raise DeployError(
                "DOMAIN_NAME needs HOSTED_ZONE_ID (the Route 53 public hosted zone of the domain)"
            )
        chosen = {
            name: environ[variable]
            for variable, name in ENVIRONMENT_PARAMETERS.items()
            if variable in environ
        }
        # Defaults from the one source: the template's ReplicaRegions and samconfig.toml's stack name.
        template = load()
        primary = environ.get("PRIMARY_REGION", template.regions[0])
        secondary = environ.get("SECONDARY_REGION", template.regions[1])
        return cls(
            stack_name=environ.get("STACK_NAME", template.stack_name),
            primary=primary,
            secondary=secondary,
            parameters={
                "PrimaryRegion": primary,
                "ReplicaRegions": f"{primary},{secondary}",
                **chosen,
            },
        )


Outputs = dict[str, dict[str, str] | None]


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def page_stack(outputs: Outputs) -> dict[str, str] | None:
    """The outputs of the stack that owns the page's distribution (the one with a PageUrl)."""
    return next((stack for stack in outputs.values() if stack and "PageUrl" in stack), None)


def learned_parameters(region: str, outputs: Outputs, primary: str) -> dict[str, str]:
    """What this region's stack needs from the stacks' outputs; a value not known yet is left out."""
    # The primary's stack creates the messages table: deletion-protected on every deploy but its
    # first create, whose rollback must be able to delete the table it made (docs/deploy.md).
    first_create = region == primary and outputs.get(region) is None
    learned = {"MessagesDeletionProtection": "false" if first_create else "true"}
    page = page_stack(outputs)
    if page:
        learned["PageDistributionId"] = page["PageDistributionId"]
        learned["AllowedOrigin"] = page["PageUrl"]
    other = next((stack for name, stack in outputs.items() if name != region and stack), None)
    if other:
        learned["PeerConnectSources"] = f"{origin(other['HttpApiUrl'])} {origin(other['WebSocketUrl'])}"
        # The page's failover origin: a bucket the other stack reports, so one that exists and is ours.
        learned["PeerPageBucket"] = other["PageBucketName"]
    return learned


def deploy_arguments(settings: Settings, region: str, parameters: dict[str, str]) -> list[str]:
    return [
        "deploy",
        "--config-env",
        region,
        "--stack-name",
        settings.stack_name,
        "--region",
        region,
        # Quoted for sam's parser (an empty value must read Key="").
        "--parameter-overrides",
        *(f'{name}="{value}"' for name, value in parameters.items()),
        "--no-fail-on-empty-changeset",
        "--no-confirm-changeset",
    ]


def check_concurrency(cloud: Cloud, settings: Settings) -> None:
    """Refuse a page-worker cap that could take the concurrency $connect and the authorizer need."""
    default = load().raw["Parameters"]["PageWorkerConcurrency"]["Default"]
    workers = int(settings.parameters.get("PageWorkerConcurrency") or default)
    for region in settings.regions:
        quota = cloud.account_concurrency(region)
        if workers > quota * MAX_WORKER_SHARE:
            raise DeployError(
                f"the account's Lambda concurrency in {region} is {quota}: {workers} page workers "
                f"could take more than a fifth of it and throttle $connect and the authorizer. Set "
                f"PAGE_WORKER_CONCURRENCY to at most {int(quota * MAX_WORKER_SHARE)} (2 at least), "
                "or ask AWS for a higher quota (Service Quotas, Lambda, Concurrent executions)"
            )


def deploy_stacks(cloud: Cloud, settings: Settings) -> dict[str, dict[str, str]]:
    """Both regions' stacks, deployed until each has the values the other's outputs give it."""
    print("== sam build (once, for both regions)", flush=True)
    cloud.sam(["build", "--config-env", settings.primary])
    check_concurrency(cloud, settings)
    ensure_api_log_role(cloud, settings.regions)
    outputs: Outputs = {region: cloud.stack_outputs(region) for region in settings.regions}

    def parameters(region: str) -> dict[str, str]:
        # What the deployer set wins (ALLOWED_ORIGIN); the rest comes from the outputs.
        return learned_parameters(region, outputs, settings.primary) | settings.parameters

    deployed: dict[str, dict[str, str]] = {}
    for attempt in ("", " again: it needs values that the other stack's outputs only give now"):
        for region in settings.regions:
            wanted = parameters(region)
            if deployed.get(region) == wanted:
                continue
            print(f"== sam deploy {settings.stack_name} to {region}{attempt}", flush=True)
            cloud.sam(deploy_arguments(settings, region, wanted))
            deployed[region] = wanted
            outputs[region] = cloud.stack_outputs(region)
    stacks = {region: stack for region, stack in outputs.items() if stack is not None}
    if stacks.keys() != set(settings.regions):
        raise DeployError(
            f"after sam deploy, no stack {settings.stack_name} in {set(settings.regions) - set(stacks)}"
        )
    return stacks


def page_files(frontend: Path, config_text: str) -> dict[str, bytes]:
    files = {
        path.name: path.read_bytes()
        for path in sorted(frontend.iterdir())
        if path.is_file() and path.suffix in CONTENT_TYPES
    }
    return files | {"config.json": config_text.encode()}


def upload_order(keys: list[str]) -> list[str]:
    # index.html last: a visitor never gets a page whose scripts are not there yet.
    return sorted(keys, key=lambda key: (key == "index.html", key))


def publish_page(cloud: Cloud, settings: Settings, stacks: dict[str, dict[str, str]]) -> str:
    """Upload what changed to each region's bucket, invalidate it in CloudFront; return the page's URL."""
    page = page_stack(dict(stacks))
    if page is None:
        raise DeployError(
            "no stack outputs PageUrl: the us-east-1 stack owns the page (docs/architecture.md)"
        )
    try:
        config = render(build_config({region: stacks[region] for region in settings.regions}))
    except ConfigError as error:
        raise DeployError(str(error)) from error
    if settings.config_path:
        settings.config_path.parent.mkdir(parents=True, exist_ok=True)
        settings.config_path.write_text(config, encoding="utf-8")
    files = page_files(settings.frontend, config)
    changed: set[str] = set()
    for region in settings.regions:
        bucket = stacks[region]["PageBucketName"]
        print(f"== the chat page in {bucket} ({region})", flush=True)
        stored = cloud.list_page(region, bucket)
        for key in upload_order(list(files)):
            if stored.get(key) != hashlib.md5(files[key], usedforsecurity=False).hexdigest():
                cloud.put_page_file(region, bucket, key, files[key], CONTENT_TYPES[Path(key).suffix])
                changed.add(key)
        gone = sorted(stored.keys() - files.keys())
        if gone:
            cloud.delete_page_files(region, bucket, gone)
            changed.update(gone)
    # The default root object is cached under "/" as well as under its own name.
    paths = sorted({f"/{key}" for key in changed} | ({"/"} if "index.html" in changed else set()))
    if paths:
        print(f"== invalidating {len(paths)} changed paths in CloudFront", flush=True)
        cloud.invalidate(page["PageDistributionId"], paths)
    else:
        print("== the chat page is unchanged: nothing to invalidate", flush=True)
    return page["PageUrl"]


def deploy(cloud: Cloud, settings: Settings) -> None:
    stacks = deploy_stacks(cloud, settings)
    url = publish_page(cloud, settings, stacks)
    for region in settings.regions:
        print(f"== {region}: " + ", ".join(f"{k}={v}" for k, v in sorted(stacks[region].items())))
        print(f"== alarms in {region}: {stacks[region]['AlarmNotifications']}")
    print(f"== the chat page: {url}")


class AwsCloud:
    """The real thing: sam as a subprocess, the rest through scripts/aws.py."""

    def __init__(self, sam: str, stack_name: str) -> None:
        self.sam_path, self.stack_name = sam, stack_name

    def sam(self, args: list[str]) -> None:
        if subprocess.run([self.sam_path, *args], check=False).returncode != 0:
            raise DeployError(f"sam {args[0]} failed (its output is above)")

    def stack_outputs(self, region: str) -> dict[str, str] | None:
        stack = aws.describe_stack(self.stack_name, region)
        if stack is None or stack["StackStatus"] == "REVIEW_IN_PROGRESS":  # a change set, never run
            return None
        if stack["StackStatus"] in aws.ONLY_DELETABLE:
            raise DeployError(
                f"stack {self.stack_name} in {region} is {stack['StackStatus']}: CloudFormation can "
                "only delete it. Run make delete (it removes a stack in any state), then make deploy"
            )
        return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}

    # The account's settings, not the stack's: the same calls whatever the stack's name.
    account_concurrency = staticmethod(aws.account_concurrency)
    api_log_role = staticmethod(aws.api_log_role)
    role_arn = staticmethod(aws.role_arn)
    create_api_log_role = staticmethod(aws.create_api_log_role)
    set_api_log_role = staticmethod(aws.set_api_log_role)

    def list_page(self, region: str, bucket: str) -> dict[str, str]:
        return aws.list_objects(bucket, region)

    def put_page_file(self, region: str, bucket: str, key: str, body: bytes, content_type: str) -> None:
        aws.put_object(bucket, region, key, body, content_type, CACHE_CONTROL)

    def delete_page_files(self, region: str, bucket: str, keys: list[str]) -> None:
        aws.delete_objects(bucket, region, keys)

    def invalidate(self, distribution_id: str, paths: list[str]) -> None:
        # A new reference each time: a reused one returns the old invalidation and clears nothing.
        aws.create_invalidation(distribution_id, paths, reference=f"make-deploy-{time.time_ns()}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sam", default="sam", help="the sam executable")
    parser.add_argument("--dry-run", action="store_true", help="print every AWS call instead of making it")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_environment(os.environ)
        cloud: Cloud = AwsCloud(args.sam, settings.stack_name)
        if args.dry_run:
            print("== dry run: every AWS call make deploy would make, in order; nothing is called")
            cloud, settings = DryRunCloud(settings.stack_name), replace(settings, config_path=None)
        deploy(cloud, settings)
    except (DeployError, AwsError) as error:
        print(f"make deploy: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""`make delete` (scripts/delete.sh): tear both regions' stacks down, primary first.

    python -m scripts.delete --sam SAM --stack-name NAME --primary REGION --secondary REGION [--dry-run]

The primary's stack goes first: its CloudFront distribution names the other region's page bucket as
its failover origin, and that bucket must not be deleted (its name left for anyone to claim) while
the distribution exists. Before it goes, deletion protection is switched off on each replica of the
messages table, on purpose and said out loud (it is on so that nothing else can delete the
messages), and the session secret's replica in the other region is deleted (Secrets Manager refuses
to delete a primary secret that still has replicas). Each stack's page bucket is emptied just before
its stack goes (CloudFormation deletes only empty buckets).

What to remove is read from the stack's resources, not its outputs, so a stack in any state is
removed, including one whose first create failed (it has no outputs). A stack that does not exist is
skipped; any other failure to read one (no or expired credentials, access denied, throttling) stops
with its message and exit 1. --dry-run reads the stacks and says what it would do, changing nothing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from scripts.api_logging import ROLE_NAME
from scripts.aws import (
    AwsError,
    client,
    empty_bucket,
    remove_secret_replicas,
    stack_resources,
    stack_status,
)
from stack_definition.cloudformation import Context, load_raw

# What CloudFormation's delete does not remove (docs/deploy.md says why each is left).
LEFT_BEHIND = (
    "the SAM CLI's artifact bucket in each region (stack aws-sam-cli-managed-default)",
    "DynamoDB's system backup of each deleted messages replica (point-in-time recovery keeps it 35 days)",
    "each region's alarm-topic KMS key, pending deletion for 7 days",
    f"IAM role {ROLE_NAME} and, in each region, API Gateway's account setting naming it (account-wide:"
    " other APIs may log with it; the next make deploy reuses it)",
    "with a domain, the certificates' DNS validation records in your hosted zone",
)


def session_secret(stack_name: str, region: str) -> str:
    """The session secret's name as the template gives it (the functions read it by this name)."""
    raw = load_raw()
    return str(
        Context(raw, region, stack_name).resolve(raw["Resources"]["SessionSigningKey"]["Properties"]["Name"])
    )


def unprotect_table(table: str, regions: list[str], dry_run: bool) -> None:
    """Switch deletion protection off on each region's replica of `table` (absent ones are skipped)."""
    for region in regions:
        dynamodb: Any = client("dynamodb", region)
        try:
            protected = dynamodb.describe_table(TableName=table)["Table"].get("DeletionProtectionEnabled")
            if protected:
                print(f"== switching deletion protection OFF for {table} in {region}: every message goes")
                if not dry_run:
                    dynamodb.update_table(TableName=table, DeletionProtectionEnabled=False)
        except dynamodb.exceptions.ResourceNotFoundException:
            continue
        except (ClientError, BotoCoreError) as error:
            raise AwsError(
                f"cannot switch deletion protection off for {table} in {region}: {error}"
            ) from error


def delete_stack(
    sam: str, stack_name: str, region: str, primary: str, regions: list[str], dry_run: bool
) -> None:
    resources = stack_resources(stack_name, region)
    if "PageBucket" in resources:  # first: a re-deploy puts the page back, not the messages
        bucket = resources["PageBucket"]
        emptied = None if dry_run else empty_bucket(bucket, region)
        state = "dry run" if dry_run else "already gone" if emptied is None else f"{emptied} objects"
        print(f"== emptying the chat page's bucket {bucket} in {region} ({state})")
    if "MessagesTable" in resources:  # this stack's delete deletes the global table
        unprotect_table(resources["MessagesTable"], regions, dry_run)
    if region == primary:  # its secret is the primary copy; Secrets Manager deletes replicas first
        secret = session_secret(stack_name, region)
        if dry_run:
            print(f"== deleting the replicas of secret {secret}, if it has any")
        elif removed := remove_secret_replicas(secret, region):
            print(f"== deleting the replicas of secret {secret} ({', '.join(removed)})")
    print(f"== sam delete {stack_name} in {region}")
    if dry_run:
        return
    command = [sam, "delete", "--config-env", region, "--stack-name", stack_name, "--region", region]
    if subprocess.run([*command, "--no-prompts"], check=False).returncode != 0:
        raise AwsError(f"sam delete of {stack_name} in {region} failed (its output is above)")


def delete(sam: str, stack_name: str, primary: str, secondary: str, dry_run: bool = False) -> None:
    if dry_run:
        print("== dry run: what make delete would remove; nothing is changed")
    for region in (primary, secondary):
        status = stack_status(stack_name, region)
        if status is None:
            print(f"== {stack_name} does not exist in {region} (nothing to delete)")
            continue
        print(f"== {stack_name} in {region} is {status}")
        delete_stack(sam, stack_name, region, primary, [primary, secondary], dry_run)
    print("== make delete leaves:" + "".join(f"\n   - {left}" for left in LEFT_BEHIND))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sam", required=True, help="the sam executable")
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--primary", required=True, help="region whose stack owns the global table")
    parser.add_argument("--secondary", required=True)
    parser.add_argument(
        "--dry-run", action="store_true", help="read the stacks, say what would go, change nothing"
    )
    args = parser.parse_args(argv)
    try:
        delete(args.sam, args.stack_name, args.primary, args.secondary, args.dry_run)
    except AwsError as error:
        print(f"make delete: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

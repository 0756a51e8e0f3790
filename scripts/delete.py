"""`make delete` (scripts/delete.sh): tear both regions' stacks down, secondary first.

    python -m scripts.delete --sam SAM --stack-name NAME --primary REGION --secondary REGION

The secondary's stack goes first (its fan-out reads a replica that the primary owns), then the
primary's, which deletes the messages global table and every replica. Before that, deletion
protection is switched off on each replica, on purpose and said out loud: it is on so that nothing
else can delete the messages. Each stack's page bucket is emptied just before its stack goes
(CloudFormation deletes only empty buckets); the us-east-1 stack's delete also removes the page's
CloudFront distribution. A stack that does not exist is skipped; any other failure to read a stack
(no or expired credentials, access denied, throttling) stops with its message and exit 1.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from scripts.aws import AwsError, client, empty_bucket, stack_outputs

# What CloudFormation's delete does not remove (docs/deploy.md says why each is left).
LEFT_BEHIND = (
    "the SAM CLI's artifact bucket in each region (stack aws-sam-cli-managed-default)",
    "DynamoDB's system backup of each deleted messages replica (point-in-time recovery keeps it 35 days)",
    "each region's alarm-topic KMS key, pending deletion for 7 days",
    "with a domain, the certificates' DNS validation records in your hosted zone",
)


def unprotect_table(table: str, regions: list[str]) -> None:
    """Switch deletion protection off on each region's replica of `table` (absent ones are skipped)."""
    for region in regions:
        dynamodb: Any = client("dynamodb", region)
        try:
            protected = dynamodb.describe_table(TableName=table)["Table"].get("DeletionProtectionEnabled")
            if protected:
                print(f"== switching deletion protection OFF for {table} in {region}: every message goes")
                dynamodb.update_table(TableName=table, DeletionProtectionEnabled=False)
        except dynamodb.exceptions.ResourceNotFoundException:
            continue
        except (ClientError, BotoCoreError) as error:
            raise AwsError(
                f"cannot switch deletion protection off for {table} in {region}: {error}"
            ) from error


def delete(sam: str, stack_name: str, primary: str, secondary: str) -> None:
    for region in (secondary, primary):
        outputs = stack_outputs(stack_name, region)
        if outputs is None:
            print(f"== {stack_name} does not exist in {region} (nothing to delete)")
            continue
        if "PageBucketName" in outputs:  # first: a re-deploy puts the page back, not the messages
            bucket = outputs["PageBucketName"]
            emptied = empty_bucket(bucket, region)
            state = "already gone" if emptied is None else f"{emptied} objects"
            print(f"== emptying the chat page's bucket {bucket} in {region} ({state})")
        if outputs.get("IsPrimaryRegion") == "true":  # this stack's delete deletes the global table
            unprotect_table(outputs["MessagesTableName"], [primary, secondary])
        print(f"== sam delete {stack_name} in {region}")
        command = [sam, "delete", "--config-env", region, "--stack-name", stack_name, "--region", region]
        if subprocess.run([*command, "--no-prompts"], check=False).returncode != 0:
            raise AwsError(f"sam delete of {stack_name} in {region} failed (its output is above)")
    print("== make delete leaves:" + "".join(f"\n   - {left}" for left in LEFT_BEHIND))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sam", required=True, help="the sam executable")
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--primary", required=True, help="region whose stack owns the global table")
    parser.add_argument("--secondary", required=True)
    args = parser.parse_args(argv)
    try:
        delete(args.sam, args.stack_name, args.primary, args.secondary)
    except AwsError as error:
        print(f"make delete: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

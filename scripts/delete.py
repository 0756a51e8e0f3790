"""`make delete` (scripts/delete.sh): tear both regions' stacks down, secondary first.

    python scripts/delete.py --sam SAM --stack-name NAME --primary REGION --secondary REGION

The secondary's stack goes first (its fan-out reads a replica that the primary owns), then the
primary's, which deletes the messages global table and every replica. Before that, deletion
protection is switched off on each replica, on purpose and said out loud: it is on so that nothing
else can delete the messages. A stack that does not exist is skipped; any other failure to read a
stack (no or expired credentials, access denied, throttling) stops with its message and exit 1.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError


class DeleteError(Exception):
    """A stack's state cannot be read or changed: say why and stop."""


def stack_outputs(stack_name: str, region: str) -> dict[str, str] | None:
    """The stack's outputs, or None when CloudFormation says the stack does not exist."""
    cloudformation: Any = boto3.client("cloudformation", region_name=region)
    try:
        (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        message = error.response["Error"].get("Message", "")
        if error.response["Error"].get("Code") == "ValidationError" and message.endswith("does not exist"):
            return None
        raise DeleteError(f"cannot read stack {stack_name} in {region}: {error}") from error
    except BotoCoreError as error:  # no credentials, no endpoint, ...
        raise DeleteError(f"cannot read stack {stack_name} in {region}: {error}") from error
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def unprotect_table(table: str, regions: list[str]) -> None:
    """Switch deletion protection off on each region's replica of `table` (absent ones are skipped)."""
    for region in regions:
        dynamodb: Any = boto3.client("dynamodb", region_name=region)
        try:
            protected = dynamodb.describe_table(TableName=table)["Table"].get("DeletionProtectionEnabled")
            if protected:
                print(f"== switching deletion protection OFF for {table} in {region}: every message goes")
                dynamodb.update_table(TableName=table, DeletionProtectionEnabled=False)
        except dynamodb.exceptions.ResourceNotFoundException:
            continue
        except (ClientError, BotoCoreError) as error:
            raise DeleteError(
                f"cannot switch deletion protection off for {table} in {region}: {error}"
            ) from error


def delete(sam: str, stack_name: str, primary: str, secondary: str) -> None:
    for region in (secondary, primary):
        outputs = stack_outputs(stack_name, region)
        if outputs is None:
            print(f"== {stack_name} does not exist in {region} (nothing to delete)")
            continue
        if outputs.get("IsPrimaryRegion") == "true":  # this stack's delete deletes the global table
            unprotect_table(outputs["MessagesTableName"], [primary, secondary])
        print(f"== sam delete {stack_name} in {region}")
        command = [sam, "delete", "--config-env", region, "--stack-name", stack_name, "--region", region]
        if subprocess.run([*command, "--no-prompts"], check=False).returncode != 0:
            raise DeleteError(f"sam delete of {stack_name} in {region} failed (its output is above)")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sam", required=True, help="the sam executable")
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--primary", required=True, help="region whose stack owns the global table")
    parser.add_argument("--secondary", required=True)
    args = parser.parse_args(argv)
    try:
        delete(args.sam, args.stack_name, args.primary, args.secondary)
    except DeleteError as error:
        print(f"make delete: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

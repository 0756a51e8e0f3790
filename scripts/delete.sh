#!/usr/bin/env bash
# `make delete`: tear every region's stack down, primary first (its distribution names another
# region's bucket), emptying each one's page bucket first, switching the messages table's deletion
# protection off on purpose and deleting the session secret's replica just before the primary's
# stack goes; then say what is left (scripts/delete.py). A stack in any state is removed, including
# one whose first create failed. Only "stack does not exist" is skipped; any other failure
# (credentials, access) stops with exit 1.
#
#   make delete ARGS=--dry-run    read the stacks and say what would go; change nothing
#
# The regions: REPLICA_REGIONS (default: template.yaml's ReplicaRegions) and PRIMARY_REGION (default:
# the first of them), as make deploy reads them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

STACK_NAME="${STACK_NAME:-resilient-chat}"
VENV="${VENV:-.venv}"
export SAM_CLI_TELEMETRY=0

if [[ " $* " == *" --dry-run "* ]]; then
  SAM="${SAM:-sam}"  # never called
else
  SAM="${SAM:-$(bash scripts/install_sam.sh | tail -n 1)}"
fi

exec "$VENV/bin/python" -m scripts.delete --sam "$SAM" --stack-name "$STACK_NAME" "$@"

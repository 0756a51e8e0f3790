#!/usr/bin/env bash
# `make delete`: tear both regions' stacks down, secondary first, emptying each one's page bucket
# first and switching the messages table's deletion protection off on purpose just before the
# primary's stack deletes it; then say what is left (scripts/delete.py).
# Only "stack does not exist" is skipped; any other failure (credentials, access) stops with exit 1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PRIMARY_REGION="${PRIMARY_REGION:-us-east-1}"
SECONDARY_REGION="${SECONDARY_REGION:-eu-west-2}"
STACK_NAME="${STACK_NAME:-resilient-chat}"
VENV="${VENV:-.venv}"

SAM="${SAM:-$(bash scripts/install_sam.sh | tail -n 1)}"
export SAM_CLI_TELEMETRY=0

exec "$VENV/bin/python" -m scripts.delete --sam "$SAM" --stack-name "$STACK_NAME" \
  --primary "$PRIMARY_REGION" --secondary "$SECONDARY_REGION"

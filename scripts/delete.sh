#!/usr/bin/env bash
# `make delete`: tear down the secondary region's stack first (its fan-out reads a replica that the
# primary owns), then the primary's (which deletes the global table and every replica).
# Idempotent: a stack that is already gone is skipped.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PRIMARY_REGION="${PRIMARY_REGION:-us-east-1}"
SECONDARY_REGION="${SECONDARY_REGION:-eu-west-2}"
STACK_NAME="${STACK_NAME:-resilient-chat}"

SAM="$(bash scripts/install_sam.sh | tail -n 1)"
export SAM_CLI_TELEMETRY=0

for region in "$SECONDARY_REGION" "$PRIMARY_REGION"; do
  if "$SAM" list stack-outputs --stack-name "$STACK_NAME" --region "$region" --output json >/dev/null 2>&1; then
    echo "== sam delete $STACK_NAME in $region"
    "$SAM" delete --config-env "$region" --stack-name "$STACK_NAME" --region "$region" --no-prompts
  else
    echo "== $STACK_NAME is not deployed in $region (nothing to delete)"
  fi
done

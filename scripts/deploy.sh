#!/usr/bin/env bash
# `make deploy`: build once, deploy the primary region's stack (it creates the messages global table
# with both replicas), then the secondary's (it waits for its replica and reads the replica's stream),
# then print every endpoint. Idempotent: an unchanged stack is a no-op.
#
#   PRIMARY_REGION=us-east-1 SECONDARY_REGION=eu-west-2   the config envs of samconfig.toml
#   DOMAIN_NAME=example.com HOSTED_ZONE_ID=Z123...        optional: api.<domain> and ws.<domain>
#   ALLOWED_ORIGIN=https://chat.example.com               optional: the browser origin for CORS
#   ALARM_EMAIL=ops@example.com                           optional: alarm notifications
# A variable left unset keeps the stack's previous value; set it to "" to clear it (e.g. DOMAIN_NAME="").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PRIMARY_REGION="${PRIMARY_REGION:-us-east-1}"
SECONDARY_REGION="${SECONDARY_REGION:-eu-west-2}"
STACK_NAME="${STACK_NAME:-resilient-chat}"
VENV="${VENV:-.venv}"

if [[ -n "${DOMAIN_NAME:-}" && -z "${HOSTED_ZONE_ID:-}" ]]; then
  echo "deploy.sh: DOMAIN_NAME needs HOSTED_ZONE_ID (the Route 53 public hosted zone of the domain)" >&2
  exit 2
fi

source scripts/runtime_python.sh
SAM="$(bash scripts/install_sam.sh | tail -n 1)"
export SAM_CLI_TELEMETRY=0

# Values are quoted for sam's parser (an empty value must read Key="").
overrides=(
  "PrimaryRegion=\"$PRIMARY_REGION\""
  "ReplicaRegions=\"$PRIMARY_REGION,$SECONDARY_REGION\""
)
# Only variables that are set are passed: sam deploy keeps the previous value of the others.
[[ -n "${DOMAIN_NAME+set}" ]] && overrides+=("DomainName=\"$DOMAIN_NAME\"")
[[ -n "${HOSTED_ZONE_ID+set}" ]] && overrides+=("HostedZoneId=\"$HOSTED_ZONE_ID\"")
[[ -n "${ALLOWED_ORIGIN+set}" ]] && overrides+=("AllowedOrigin=\"$ALLOWED_ORIGIN\"")
[[ -n "${ALARM_EMAIL+set}" ]] && overrides+=("AlarmEmail=\"$ALARM_EMAIL\"")

echo "== sam build (once, for both regions)"
"$SAM" build --config-env "$PRIMARY_REGION"

for region in "$PRIMARY_REGION" "$SECONDARY_REGION"; do
  echo "== sam deploy $STACK_NAME to $region"
  "$SAM" deploy \
    --config-env "$region" \
    --stack-name "$STACK_NAME" \
    --region "$region" \
    --parameter-overrides "${overrides[@]}" \
    --no-fail-on-empty-changeset \
    --no-confirm-changeset
done

for region in "$PRIMARY_REGION" "$SECONDARY_REGION"; do
  echo "== endpoints in $region"
  "$SAM" list stack-outputs --stack-name "$STACK_NAME" --region "$region" --output table
done

# The browser client's config.json (frontend/README.md), from the stacks' outputs only: a re-deploy
# that leaves DOMAIN_NAME unset keeps the stacks' domain, and so must the page.
config=".aws-sam/config.json"
outputs=()
for region in "$PRIMARY_REGION" "$SECONDARY_REGION"; do
  outputs+=("$region" "$("$SAM" list stack-outputs --stack-name "$STACK_NAME" --region "$region" --output json)")
done
"$VENV/bin/python" scripts/frontend_config.py "$config" "${outputs[@]}"
echo "== the chat page's config: $config (host it with frontend/, as config.json)"

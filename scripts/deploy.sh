#!/usr/bin/env bash
# `make deploy` (scripts/deploy.py): build once, deploy the primary region's stack (it creates the
# messages global table with every replica), then the other regions', then once more any stack that
# needs a value the others' outputs only gave now; upload the chat page and config.json to every
# region's bucket, invalidate what changed in CloudFront, and print the page's URL. Idempotent.
#
#   REPLICA_REGIONS=us-east-1,eu-west-2,ap-northeast-1   optional: the regions (default: the template's)
#   PRIMARY_REGION=us-east-1                              optional: the first of them unless set
#   DOMAIN_NAME=example.com HOSTED_ZONE_ID=Z123...        optional: api., ws. and chat.<domain>
#   ALLOWED_ORIGIN=https://chat.example.com               optional: CORS origin (default: the page's)
#   ALARM_EMAIL=ops@example.com                           optional: alarm notifications
# A variable left unset keeps the stack's previous value; set it to "" to clear it (e.g. DOMAIN_NAME="").
#
#   make deploy ARGS=--dry-run    print every AWS call, in order, without credentials or sam
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-.venv}"
export SAM_CLI_TELEMETRY=0

if [[ " $* " == *" --dry-run "* ]]; then
  SAM=sam  # only printed
else
  source scripts/runtime_python.sh
  SAM="$(bash scripts/install_sam.sh | tail -n 1)"
fi

exec "$VENV/bin/python" -m scripts.deploy --sam "$SAM" "$@"

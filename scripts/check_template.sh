#!/usr/bin/env bash
# Template checks, offline (no AWS account, no Docker): cfn-lint, sam validate --lint, sam build,
# then the template tests. Called by `make template` and `make test`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-.venv}"

source scripts/runtime_python.sh

SAM="$(bash scripts/install_sam.sh | tail -n 1)"
# sam validate --lint and sam build never call AWS, but botocore wants a region.
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export SAM_CLI_TELEMETRY=0

echo "== cfn-lint template.yaml"
"$VENV/bin/cfn-lint" template.yaml

echo "== sam validate --lint"
"$SAM" validate --lint --template-file template.yaml

# The template again with five regions, the most it takes (docs/architecture.md): the region slots'
# conditions and lists must lint clean at both ends.
FIVE_REGIONS="us-east-1,eu-west-2,ap-northeast-1,ap-southeast-2,sa-east-1"
mkdir -p .aws-sam
sed "s/^    Default: \"us-east-1,eu-west-2\"$/    Default: \"$FIVE_REGIONS\"/" template.yaml >.aws-sam/template-5-regions.yaml
grep -q "Default: \"$FIVE_REGIONS\"" .aws-sam/template-5-regions.yaml  # the default was found and replaced
echo "== cfn-lint template.yaml with ReplicaRegions=$FIVE_REGIONS"
"$VENV/bin/cfn-lint" .aws-sam/template-5-regions.yaml
echo "== sam validate --lint with ReplicaRegions=$FIVE_REGIONS"
"$SAM" validate --lint --template-file .aws-sam/template-5-regions.yaml

echo "== sam build"
"$SAM" build --template-file template.yaml --build-dir .aws-sam/build

if [[ "${1:-}" != "--no-tests" ]]; then  # `make test` runs tests/template with the rest
  echo "== pytest tests/template"
  "$VENV/bin/python" -m pytest tests/template -q
fi

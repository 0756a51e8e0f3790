#!/usr/bin/env bash
# `make test`: everything a reviewer would run, fastest layers first.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== lint"; bash scripts/lint.sh
echo "== template"; bash scripts/check_template.sh --no-tests
echo "== tests"; .venv/bin/python -m pytest "$@"

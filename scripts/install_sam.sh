#!/usr/bin/env bash
# Install the AWS SAM CLI into its own virtualenv (.tools/sam, git-ignored) so that its pinned
# dependencies never fight with the development venv (.venv). Idempotent: a no-op when the pinned
# version is already there. Prints the path of the `sam` executable on stdout (last line).
set -euo pipefail

SAM_VERSION="${SAM_VERSION:-1.170.0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SAM_VENV="${SAM_VENV:-$ROOT/.tools/sam}"
SAM_BIN="$SAM_VENV/bin/sam"
STAMP="$SAM_VENV/.installed-$SAM_VERSION"

if [[ -x "$SAM_BIN" && -f "$STAMP" ]]; then
  echo "$SAM_BIN"
  exit 0
fi

# Any Python >= 3.9 can host the CLI; the build runtime (python3.12) is found separately.
BASE_PY="${SAM_BASE_PYTHON:-}"
if [[ -z "$BASE_PY" ]]; then
  for candidate in python3.12 python3.11 python3; do
    if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 9))' >/dev/null 2>&1; then
      BASE_PY="$candidate"
      break
    fi
  done
fi
if [[ -z "$BASE_PY" ]]; then
  echo "install_sam.sh: no Python >= 3.9 found to host the SAM CLI" >&2
  exit 1
fi

echo "install_sam.sh: installing aws-sam-cli==$SAM_VERSION into $SAM_VENV (with $BASE_PY)" >&2
rm -rf "$SAM_VENV"
"$BASE_PY" -m venv "$SAM_VENV"
"$SAM_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
"$SAM_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "aws-sam-cli==$SAM_VERSION" >&2
"$SAM_BIN" --version >&2
touch "$STAMP"
echo "$SAM_BIN"

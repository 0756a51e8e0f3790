#!/usr/bin/env bash
# Create (or refresh) the development virtualenv: `make venv` calls this.
set -euo pipefail
venv=${1:-.venv}
python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "resilient-chat needs Python 3.11 or newer (found $("$python" --version))" >&2; exit 1; }
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r requirements-dev.txt
# The Lambda code (functions/) and the tools at the top (localcloud, drill, bench) import from anywhere.
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
printf '%s\n%s\n' "$PWD/functions" "$PWD" > "$site/resilient-chat.pth"
touch "$venv/.installed"

#!/usr/bin/env bash
# ruff (lint and format) over everything, mypy --strict over the shipped code, and the import
# rules (pyproject.toml, [tool.importlinter]).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports --no-cache

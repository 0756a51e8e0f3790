"""Where the repository is, and the two files that define the stack in it: template.yaml (every
region's stack) and samconfig.toml (the stack's name and each region's parameters)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "samconfig.toml"
FUNCTIONS = ROOT / "functions"  # the Lambda code (CodeUri)

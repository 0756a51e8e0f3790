"""The domain is sealed: its rules and its fan-out load no AWS SDK, so unit tests and any other
adapter can use them without botocore. A fresh interpreter, so that earlier imports cannot hide it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", ["chat.service", "chat.fanout", "chat.edits", "chat.change_stream"])
def test_importing_the_domain_loads_no_botocore(module: str) -> None:
    sdk = "('botocore', 'boto3')"
    probe = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] in {sdk}))"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "functions")}
    run = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert run.stdout.strip() == "[]"

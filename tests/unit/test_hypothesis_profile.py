"""Property tests are reproducible in CI and keep exploring elsewhere (tests/conftest.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import tests.conftest; from hypothesis import settings; "
    "print(settings.default.derandomize, settings.default.max_examples)"
)


def profile_under(ci: str | None) -> tuple[bool, int]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "HYPOTHESIS_PROFILE")}
    if ci is not None:
        env["CI"] = ci
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0] == "True", int(out[1])


def test_ci_draws_the_same_examples_on_every_run_and_enough_of_them() -> None:
    derandomized, examples = profile_under("true")
    assert derandomized
    assert examples >= 200


@pytest.mark.parametrize("ci", [None, "false"])
def test_local_runs_keep_exploring(ci: str | None) -> None:
    derandomized, examples = profile_under(ci)
    assert not derandomized
    assert examples >= 100

"""docs/local.md lists every setting that `python -m localcloud --help` shows."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from localcloud.stack.cli import parse_args

ROOT = Path(__file__).resolve().parents[2]


def test_every_option_of_make_local_is_in_the_settings_table() -> None:
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown), pytest.raises(SystemExit):
        parse_args(["--help"])
    options = set(re.findall(r"^  (--[a-z-]+)", shown.getvalue(), re.M)) - {"--help"}
    documented = set(re.findall(r"^\| `(--[a-z-]+)` \|", (ROOT / "docs/local.md").read_text(), re.M))
    assert options, shown.getvalue()
    assert documented == options

"""The Makefile is the one entry point: every target it declares does something."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.template.cfn import ROOT


def _dry_run(target: str) -> str:
    run = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=True)
    return run.stdout


@pytest.mark.parametrize("layer", ["unit", "integration", "e2e"])
def test_given_a_test_layer_target_then_it_runs_that_layers_tests(layer: str) -> None:
    assert re.search(rf"-m pytest tests/{layer}\b", _dry_run(layer)), _dry_run(layer)


def test_given_every_phony_target_then_each_has_a_recipe_of_its_own() -> None:
    makefile = (ROOT / "Makefile").read_text()
    (phony,) = re.findall(r"^\.PHONY:(.*)$", makefile, flags=re.MULTILINE)
    for target in phony.split():
        # `venv` is an alias of the file that records the install; every other target runs a command.
        rule = re.search(rf"^{target}:[^\n]*\n((?:\t[^\n]*\n)*)", makefile, flags=re.MULTILINE)
        assert rule, f"make {target} is declared but has no rule"
        assert rule.group(1).strip() or target == "venv", f"make {target} has no recipe"

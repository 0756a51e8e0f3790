"""The drill and the benchmarks take the regions and the stack's name from template.yaml (and
samconfig.toml), as the local stack does: none of their modules writes one out again."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from stack_definition.repository import ROOT
from stack_definition.template import load

TEMPLATE = load()
FACTS = {*TEMPLATE.regions, TEMPLATE.stack_name}
SOURCES = sorted((ROOT / "drill").glob("*.py")) + sorted((ROOT / "bench").glob("*.py"))


@pytest.mark.parametrize("source", SOURCES, ids=lambda path: str(path.relative_to(ROOT)))
def test_no_module_writes_out_a_region_or_the_stack_name(source: Path) -> None:
    tree = ast.parse(source.read_text(), str(source))
    written_out = [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in FACTS
    ]
    assert written_out == []

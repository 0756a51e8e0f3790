"""The documentation stands on its own and its commands exist: no reference to a file outside the
repository, every relative link resolves, every `make` target, `python -m` module and `ARGS=--flag`
it shows is one the repository has. (Running each command is the other layers' job: e2e runs what
`make local` prints, tests/template/test_deploy.py the deploy dry run, test_delete.py make delete.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.template.cfn import ROOT

DOCS = [ROOT / "README.md", ROOT / "frontend" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# The program behind each make target that takes ARGS.
PROGRAMS = {
    "deploy": ["scripts/deploy.py", "scripts/deploy.sh"],
    "delete": ["scripts/delete.py", "scripts/delete.sh"],
    "bench": ["bench/__main__.py"],
    "drill": ["drill/__main__.py", "drill/options.py"],
    "local": ["localcloud/stack/cli.py"],
}


def _code(text: str) -> str:
    """What a reader would type: fenced blocks and inline code, not prose ("make a", "make up")."""
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL))
    return "\n".join([*fenced, *inline])


def _targets() -> set[str]:
    makefile = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z0-9-]+):", makefile, flags=re.MULTILINE))


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_given_a_document_then_it_points_at_nothing_outside_the_repository(doc: Path) -> None:
    text = doc.read_text()
    assert not re.search(r"\bBRIEF\b|STYLE\.md|\.\./shared", text)
    for link in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if not re.match(r"[a-z]+:", link):
            assert (doc.parent / link).exists(), f"{doc.name} links to {link}, which is not in the repository"


@pytest.mark.parametrize("doc", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_given_a_document_then_every_command_it_shows_names_what_the_repository_has(doc: Path) -> None:
    text = _code(doc.read_text())
    targets = _targets()
    for target in re.findall(r"(?<![\w/.-])make ([a-z][a-z0-9-]*)", text):
        assert target in targets, f"{doc.name}: make {target} is not a Makefile target"
    for module in re.findall(r"python -m ([a-z_][a-z0-9_.]*)", text):
        if module in {"pytest", "pip", "venv", "http.server"}:
            continue
        path = ROOT / module.replace(".", "/")
        assert path.with_suffix(".py").exists() or (path / "__main__.py").exists(), f"{doc.name}: {module}"
    for target, args in re.findall(r"make ([a-z]+) ARGS=(\"[^\"]*\"|'[^']*'|\S+)", text):
        source = "".join((ROOT / program).read_text() for program in PROGRAMS.get(target, []))
        for flag in set(re.findall(r"--[a-z][a-z0-9-]*", args)) - {"--help"}:
            assert f'"{flag}"' in source or f"{flag} " in source, f"{doc.name}: make {target} {flag}"

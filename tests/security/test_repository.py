"""Security checks that need no running system: no secrets committed, the browser client never
turns message text into markup, the local stack refuses to bind anything but loopback."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from localcloud.stack.cli import parse_args

ROOT = Path(__file__).resolve().parents[2]
SECRET_PATTERNS = {
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "AWS secret access key": re.compile(r"aws_secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+]{40}\b", re.I),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36}\b"),
}


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / name for name in listed.splitlines() if (ROOT / name).is_file()]


def test_no_secret_is_committed() -> None:
    found = []
    for path in tracked_files():
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue  # images
        found += [
            f"{path.relative_to(ROOT)}: {kind}"
            for kind, pattern in SECRET_PATTERNS.items()
            if pattern.search(text)
        ]
    assert found == []


def test_the_browser_client_never_writes_markup() -> None:
    sinks = re.compile(
        r"\.(innerHTML|outerHTML)\s*\+?=|insertAdjacentHTML|document\.write|\beval\(|new Function\("
    )
    offenders = [
        f"{path.name}:{number}"
        for path in (ROOT / "frontend").glob("*.js")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if sinks.search(line)
    ]
    assert offenders == []


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::"])  # noqa: S104 - refused on purpose
def test_the_local_stack_refuses_to_bind_beyond_loopback(host: str) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--host", host])

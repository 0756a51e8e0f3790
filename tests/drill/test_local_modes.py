"""What each mode plays on the local stack, as its dry run prints it: the front door's control
request that injects the fault and the one that removes it; `outage` is still a kill."""

from __future__ import annotations

from pathlib import Path

import pytest

from drill.__main__ import main
from stack_definition.state import StateDir
from stack_definition.template import region_names

REGIONS = region_names()

FRONT_DOOR = "http://127.0.0.1:9"


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    """A stack.json as `make local` writes it (nothing listens: a dry run calls nothing)."""
    StateDir(tmp_path).write(
        {
            "awsEndpointUrl": FRONT_DOOR,
            "frontDoorUrl": FRONT_DOOR,
            "regions": {region: {"pid": pid} for pid, region in enumerate(REGIONS, 1000)},
        }
    )
    return tmp_path


@pytest.mark.parametrize(
    ("mode", "injects", "removes"),
    [
        ("dynamodb", '{"action": "fail", "service": "dynamodb"}', '{"action": "heal"}'),
        ("lambda", '{"action": "fail", "service": "lambda"}', '{"action": "heal"}'),
        ("kill", '{"action": "stop"}', '{"action": "start"}'),
        ("outage", '{"action": "stop"}', '{"action": "start"}'),
    ],
)
def test_a_local_dry_run_prints_the_control_that_injects_the_fault_and_the_one_that_removes_it(
    stack: Path, capsys: pytest.CaptureFixture[str], mode: str, injects: str, removes: str
) -> None:
    region = REGIONS[-1]
    assert main(["--state-dir", str(stack), "--region", region, "--mode", mode, "--dry-run"]) == 0
    out = capsys.readouterr().out
    control = f"POST {FRONT_DOOR}/_local/regions/{region}"
    assert f"{control} {injects}" in out
    assert f"removed by {control} {removes}" in out
    assert "dry run: nothing changed" in out
    if mode == "outage":
        assert "by 'outage' (a kill fault)" in out

"""`make bench` replaces the published figures (bench/results/*.json, quoted by docs/ and read by the
drill, and docs/*.png) only when asked: a quick or partial run writes elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

import bench.__main__ as bench_main
from bench.common import RESULTS
from stack_definition.repository import ROOT


def _published() -> dict[str, bytes]:
    files = [*RESULTS.glob("*.json"), *RESULTS.glob("*.png"), *(ROOT / "docs").glob("*.png")]
    return {str(path): path.read_bytes() for path in files}


def test_given_a_quick_partial_run_then_the_published_figures_are_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench_main, "SCRATCH", tmp_path / "scratch")
    before = _published()
    assert bench_main.main(["idle", "--quick"]) == 0
    assert _published() == before
    assert (tmp_path / "scratch" / "idle.json").exists()


@pytest.mark.parametrize("other", [["--quick"], ["--out", "elsewhere"]])
def test_given_publish_with_a_quick_run_or_another_place_then_it_is_refused(other: list[str]) -> None:
    with pytest.raises(SystemExit) as refused:
        bench_main.main(["--publish", *other])
    assert refused.value.code == 2

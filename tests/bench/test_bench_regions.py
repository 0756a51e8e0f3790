"""The benchmarks with a third region: `--regions` runs it, `--region` measures in it, and the
latency benchmark reports every ordered pair of regions. No assertion is about time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main

pytestmark = pytest.mark.timeout(300)
THREE = ("us-east-1", "eu-west-2", "ap-northeast-1")


def test_given_three_regions_then_capacity_is_measured_in_the_chosen_one_and_latency_in_every_pair(
    tmp_path: Path,
) -> None:
    argv = ["capacity", "latency", "--quick", "--out", str(tmp_path), "--regions", ",".join(THREE)]
    assert main([*argv, "--region", "ap-northeast-1"]) == 0
    capacity = json.loads((tmp_path / "capacity.json").read_text())
    assert (capacity["region"], capacity["stackRegions"]) == ("ap-northeast-1", list(THREE))
    assert all(row["messagesPerSecond"] > 0 for row in capacity["rows"])
    latency = json.loads((tmp_path / "latency.json").read_text())
    assert latency["regions"]["sender"] == "ap-northeast-1"
    pairs = {(pair["from"], pair["to"]) for pair in latency["pairs"]}
    assert pairs == {(a, b) for a in THREE for b in THREE if a != b}
    for pair in latency["pairs"]:
        assert pair["latencyMs"]["n"] == pair["messages"] * pair["clients"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--regions", "us-east-1,eu-west-2", "--region", "ap-northeast-1"],
        ["--regions", "eu-west-2,ap-northeast-1"],
    ],
)
def test_given_a_region_the_stack_would_not_run_then_the_benchmarks_refuse(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        main(["capacity", "--quick", *argv])

"""`make local --regions`: short for ReplicaRegions, checked against what the template can make."""

from __future__ import annotations

import pytest

from localcloud.stack.cli import parse_args
from localcloud.stack.supervisor import ports_per_stack

THREE = "us-east-1,eu-west-2,ap-northeast-1"


def test_given_three_regions_then_every_stack_is_made_with_them_and_the_stack_takes_two_more_ports() -> None:
    args = parse_args(["--regions", THREE])
    assert args.parameter_overrides == {"ReplicaRegions": THREE}  # each region's process gets them
    assert args.template.regions == THREE.split(",")
    assert ports_per_stack(args.template) == 8  # the front door, the AWS endpoint, 2 per region
    assert parse_args(["--parameter-overrides", f"ReplicaRegions={THREE}"]).template.regions == THREE.split(
        ","
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--regions", "us-east-1,eu-west-2,ap-northeast-1,ap-southeast-2,sa-east-1,eu-central-1"],
        ["--regions", "us-east-1"],
        ["--regions", "eu-west-2,ap-northeast-1"],
        ["--regions", "us-east-1,us-east-1"],
        ["--regions", THREE, "--parameter-overrides", "ReplicaRegions=us-east-1,eu-west-2"],
    ],
)
def test_given_regions_the_template_cannot_make_then_make_local_refuses_before_starting(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse_args(argv)
    assert "ReplicaRegions" in capsys.readouterr().err

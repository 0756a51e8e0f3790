"""What `make local` prints works when pasted into a fresh shell: no AWS configuration, no venv
on PATH, a home directory of its own."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest

from localcloud.stack.cli import banner
from stack_definition.routing import ROUTE53_REGION
from stack_definition.state import StateDir
from tests.e2e.chat import NEAR_NEW_YORK, until_health

pytestmark = pytest.mark.e2e


def printed_command(info: dict[str, Any], heading: str) -> str:
    lines = banner(info, StateDir(Path(info["stateDir"]))).splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith(heading))
    return lines[at + 1].strip()


def test_the_take_a_region_out_command_works_as_printed_in_a_clean_shell(
    stack: dict[str, Any], tmp_path: Path
) -> None:
    command = printed_command(stack, "take a region out")
    route53 = boto3.client(
        "route53",
        endpoint_url=stack["awsEndpointUrl"],
        region_name=ROUTE53_REGION,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    check = stack["regions"][NEAR_NEW_YORK]["healthCheckId"]
    try:
        pasted = subprocess.run(
            ["sh", "-c", command],
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert pasted.returncode == 0, f"{command}\n{pasted.stderr}"
        config = route53.get_health_check(HealthCheckId=check)["HealthCheck"]["HealthCheckConfig"]
        assert config["Inverted"] is True
        asyncio.run(until_health(stack["statusUrl"], NEAR_NEW_YORK, healthy=False))
    finally:
        route53.update_health_check(HealthCheckId=check, Inverted=False)
        asyncio.run(until_health(stack["statusUrl"], NEAR_NEW_YORK, healthy=True))

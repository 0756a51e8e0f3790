"""Fixtures for the template tests: the template as written, and as each region's stack sees it."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from tests.template.cfn import SAMCONFIG_PATH, Stack, Template, load_template

PRIMARY = "us-east-1"
SECONDARY = "eu-west-2"


@pytest.fixture(scope="session")
def template() -> Template:
    return load_template()


@pytest.fixture(scope="session")
def resources(template: Template) -> dict[str, dict[str, Any]]:
    return dict(template["Resources"])


@pytest.fixture(scope="session")
def functions(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


@pytest.fixture(scope="session")
def primary_stack(template: Template) -> Stack:
    return Stack(template, PRIMARY)


@pytest.fixture(scope="session")
def secondary_stack(template: Template) -> Stack:
    return Stack(template, SECONDARY)


@pytest.fixture(scope="session")
def samconfig() -> dict[str, Any]:
    with SAMCONFIG_PATH.open("rb") as handle:
        return tomllib.load(handle)

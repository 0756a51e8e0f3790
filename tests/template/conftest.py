"""Fixtures for the template tests: the template as written, and as each region's stack sees it."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from tests.template.cfn import SAMCONFIG_PATH, Context, Template, load_template, stack_in

# The regions the template's parameters name: the primary (it creates the global table) and the other.
_DEFAULTS = stack_in(load_template(), "")
PRIMARY = _DEFAULTS.parameter("PrimaryRegion")
(SECONDARY,) = set(_DEFAULTS.parameter("ReplicaRegions")) - {PRIMARY}


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
def primary_stack(template: Template) -> Context:
    return stack_in(template, PRIMARY)


@pytest.fixture(scope="session")
def secondary_stack(template: Template) -> Context:
    return stack_in(template, SECONDARY)


@pytest.fixture(scope="session")
def samconfig() -> dict[str, Any]:
    with SAMCONFIG_PATH.open("rb") as handle:
        return tomllib.load(handle)

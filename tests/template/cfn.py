"""The template as the template tests read it: through stack_definition's CloudFormation resolver (the
one resolver of the repository), partially resolved so that a test can see what a value points at."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stack_definition.cloudformation import (
    Context,
    condition_implies,
    load_raw,
    refs_in,
    resources_of_type,
    stack_name,
    unguarded_refs,
)
from stack_definition.repository import ROOT, SAMCONFIG, TEMPLATE

__all__ = ["ROOT", "Context", "condition_implies", "refs_in", "resources_of_type", "unguarded_refs"]

TEMPLATE_PATH = TEMPLATE
SAMCONFIG_PATH = SAMCONFIG
FUNCTIONS_DIR = ROOT / "functions"

Template = dict[str, Any]

# The types that exist only to give the chat a custom domain; every one must sit behind HasDomain.
DOMAIN_RESOURCE_TYPES = frozenset(
    {
        "AWS::CertificateManager::Certificate",
        "AWS::ApiGatewayV2::DomainName",
        "AWS::ApiGatewayV2::ApiMapping",
        "AWS::Route53::HealthCheck",
        "AWS::Route53::RecordSet",
    }
)


def load_template() -> Template:
    return load_raw(TEMPLATE_PATH)


def stack_in(template: Template, region: str, overrides: Mapping[str, str] | None = None) -> Context:
    """The template as CloudFormation would see it in one region's stack with these parameters."""
    return Context(template, region, stack_name(), overrides or {}, partial=True)

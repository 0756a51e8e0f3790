"""The chat page's config.json as `make deploy` writes it, from the stacks' outputs alone."""

from __future__ import annotations

import re

import pytest

from scripts.frontend_config import ConfigError, build_config, render
from tests.template.cfn import ROOT


def _stack_outputs(region: str, api: str, ws: str, domain: str | None) -> dict[str, str]:
    """One region's stack outputs, as make deploy reads them (OutputKey: OutputValue)."""
    values = {
        "Region": region,
        "HttpApiUrl": f"https://{api}.execute-api.{region}.amazonaws.com",
        "WebSocketUrl": f"wss://{ws}.execute-api.{region}.amazonaws.com/prod",
        "WebSocketManagementEndpoint": f"https://{ws}.execute-api.{region}.amazonaws.com/prod",
    }
    if domain:
        values["HealthCheckId"] = "0f2b7c1e-0000-4000-8000-000000000000"
        values["HttpCustomDomainUrl"] = f"https://api.{domain}"
        values["WebSocketCustomDomainUrl"] = f"wss://ws.{domain}"
    return values


def _both(domain: str | None) -> dict[str, dict[str, str]]:
    return {
        "us-east-1": _stack_outputs("us-east-1", "a1b2c3d4e5", "f6g7h8i9j0", domain),
        "eu-west-2": _stack_outputs("eu-west-2", "k1l2m3n4o5", "p6q7r8s9t0", domain),
    }


def test_given_stacks_with_a_domain_then_the_page_uses_the_routed_names_whatever_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A re-deploy with DOMAIN_NAME unset keeps the stacks' domain: the config must keep it too.
    monkeypatch.delenv("DOMAIN_NAME", raising=False)
    config = build_config(_both("example.com"))
    assert config["apiUrl"] == "https://api.example.com"
    assert config["websocketUrl"] == "wss://ws.example.com"
    assert config["regions"]["eu-west-2"] == {
        "httpUrl": "https://k1l2m3n4o5.execute-api.eu-west-2.amazonaws.com",
        "websocketUrl": "wss://p6q7r8s9t0.execute-api.eu-west-2.amazonaws.com/prod",
    }
    assert config["local"] is False


def test_given_stacks_without_a_domain_then_the_routed_names_are_the_primary_regions_own_endpoints() -> None:
    config = build_config(_both(None))
    assert config["apiUrl"] == "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"
    assert config["websocketUrl"] == "wss://f6g7h8i9j0.execute-api.us-east-1.amazonaws.com/prod"
    assert list(config["regions"]) == ["us-east-1", "eu-west-2"]


def test_given_stacks_that_disagree_on_the_domain_then_no_config_is_made() -> None:
    outputs = _both("example.com")
    outputs["eu-west-2"] = _stack_outputs("eu-west-2", "k1l2m3n4o5", "p6q7r8s9t0", None)
    with pytest.raises(ConfigError, match="HttpCustomDomainUrl"):
        build_config(outputs)


def test_given_the_frontend_readme_then_its_config_example_is_exactly_what_deploy_writes() -> None:
    readme = (ROOT / "frontend" / "README.md").read_text()
    (example,) = re.findall(r"```json\n(.*?)```", readme, flags=re.DOTALL)
    assert example == render(build_config(_both("example.com")))

"""The chat page's config.json, made from the stacks' outputs (never from the deployer's environment).

`make deploy` (scripts/deploy.py) calls build_config with each region's stack outputs and uploads the
rendered text beside the page. The routed names are the stacks' own
`HttpCustomDomainUrl`/`WebSocketCustomDomainUrl` outputs, so a re-deploy that leaves DOMAIN_NAME
unset (keeping the stacks' domain) still writes them. Without a domain the page's routed name is the
primary region's own endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

ROUTED_KEYS = {"apiUrl": "HttpCustomDomainUrl", "websocketUrl": "WebSocketCustomDomainUrl"}


class ConfigError(Exception):
    """The stacks' outputs cannot make one consistent config."""


def build_config(outputs: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """`outputs` maps each region, the primary first, to its stack's outputs (OutputKey: OutputValue)."""
    regions = {
        region: {"httpUrl": stack["HttpApiUrl"], "websocketUrl": stack["WebSocketUrl"]}
        for region, stack in outputs.items()
    }
    primary = next(iter(regions))
    config: dict[str, Any] = {}
    for key, output in ROUTED_KEYS.items():
        routed = {stack.get(output) for stack in outputs.values()}
        if len(routed) != 1:
            seen = sorted(map(str, routed))
            raise ConfigError(f"the stacks disagree on {output}: {seen}; deploy both again")
        (name,) = routed
        config[key] = name or regions[primary]["httpUrl" if key == "apiUrl" else "websocketUrl"]
    config["regions"] = regions
    config["local"] = False
    return config


def render(config: dict[str, Any]) -> str:
    return json.dumps(config, indent=2) + "\n"

"""The chat page's config.json, made from the stacks' outputs (never from the deployer's environment).

`make deploy` (scripts/deploy.sh) calls it with each region's `sam list stack-outputs --output json`:

    python scripts/frontend_config.py OUT_PATH PRIMARY_REGION PRIMARY_OUTPUTS [REGION OUTPUTS]...

The routed names are the stacks' own `HttpCustomDomainUrl`/`WebSocketCustomDomainUrl` outputs, so a
re-deploy that leaves DOMAIN_NAME unset (keeping the stacks' domain) still writes them. Without a
domain the page's routed name is the primary region's own endpoint.
"""

from __future__ import annotations

import json
import sys
from typing import Any

ROUTED_KEYS = {"apiUrl": "HttpCustomDomainUrl", "websocketUrl": "WebSocketCustomDomainUrl"}


class ConfigError(Exception):
    """The stacks' outputs cannot make one consistent config."""


def build_config(outputs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """`outputs` maps each region, the primary first, to its stack's outputs as sam lists them."""
    values = {
        region: {output["OutputKey"]: output["OutputValue"] for output in listed}
        for region, listed in outputs.items()
    }
    regions = {
        region: {"httpUrl": stack["HttpApiUrl"], "websocketUrl": stack["WebSocketUrl"]}
        for region, stack in values.items()
    }
    primary = next(iter(regions))
    config: dict[str, Any] = {}
    for key, output in ROUTED_KEYS.items():
        routed = {stack.get(output) for stack in values.values()}
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


def main(argv: list[str]) -> int:
    if len(argv) < 3 or len(argv) % 2 != 1:
        print(__doc__, file=sys.stderr)
        return 2
    path, pairs = argv[0], argv[1:]
    outputs = {region: json.loads(raw) for region, raw in zip(pairs[::2], pairs[1::2], strict=True)}
    try:
        text = render(build_config(outputs))
    except ConfigError as error:
        print(f"frontend_config.py: {error}", file=sys.stderr)
        return 1
    with open(path, "w", encoding="utf-8") as out:
        out.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

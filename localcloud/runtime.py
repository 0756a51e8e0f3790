"""A region's Lambda runtime: the template's environment for that region, and its handlers
imported unchanged from functions/."""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any

from localcloud.template import ROOT, Template

Handler = Callable[[dict[str, Any], Any], Any]

# Lambda gives every function these; locally there is no X-Ray daemon to trace to.
LOCAL_ENVIRONMENT = {
    "POWERTOOLS_TRACE_DISABLED": "true",
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
}


def region_environment(
    template: Template,
    region: str,
    *,
    refs: Mapping[str, str],
    aws_endpoint: str,
    local_urls: Mapping[str, str],
) -> dict[str, str]:
    """The variables of every function in this region, resolved for the local stack.

    All of a region's functions share one process here, so their variables are merged; two
    functions giving one variable different values would be a template this runtime refuses.
    `local_urls` maps an API's logical id to its local base URL, so that the execute-api URL the
    template builds for it (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`) points here.
    """
    ctx = template.context(region, "resilient-chat", {}, {name: name for name in local_urls} | dict(refs))
    env: dict[str, str] = {}
    for function in template.functions.values():
        for name, raw in function.environment.items():
            value = str(ctx.resolve(raw))
            for api, base in local_urls.items():
                value = re.sub(rf"^https://{api}\.execute-api\.{region}\.amazonaws\.com", base, value)
            if env.get(name, value) != value:
                raise ValueError(f"{name} differs between functions: {env[name]!r} and {value!r}")
            env[name] = value
    return {
        **env,
        **LOCAL_ENVIRONMENT,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ENDPOINT_URL_DYNAMODB": aws_endpoint,
        "AWS_ENDPOINT_URL_DYNAMODBSTREAMS": aws_endpoint,
    }


def load_handler(handler: str) -> Handler:
    """Import `package.module.function` from functions/, as the Lambda runtime does."""
    code = str(ROOT / "functions")
    if code not in sys.path:
        sys.path.insert(0, code)
    module, _, name = handler.rpartition(".")
    function: Handler = getattr(importlib.import_module(module), name)
    return function

"""Every function in the template points at handler code that exists and imports."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from tests.template.cfn import FUNCTIONS_DIR, Template, load_template

EXPECTED_HANDLERS = {
    "ConnectFunction": "chat.handlers.ws_connect.handler",
    "DisconnectFunction": "chat.handlers.ws_disconnect.handler",
    "SendMessageFunction": "chat.handlers.ws_send.handler",
    "DefaultRouteFunction": "chat.handlers.ws_default.handler",
    "HttpApiFunction": "chat.handlers.http_api.handler",
    "FanoutFunction": "chat.handlers.fanout_stream.handler",
    "FanoutWorkerFunction": "chat.handlers.fanout_worker.handler",
    "AuthorizerFunction": "chat.handlers.ws_authorizer.handler",
    "PresenceKeeperFunction": "chat.handlers.presence_keeper.handler",
}

# Stand-ins for the values CloudFormation fills in, so that settings read at import time resolve.
IMPORT_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "MESSAGES_TABLE": "resilient-chat-messages",
    "CONNECTIONS_TABLE": "resilient-chat-connections",
    "WEBSOCKET_MANAGEMENT_ENDPOINT": "https://abc123.execute-api.us-east-1.amazonaws.com/prod",
    "POWERTOOLS_TRACE_DISABLED": "1",
    "POWERTOOLS_METRICS_NAMESPACE": "ResilientChat",
    "POWERTOOLS_SERVICE_NAME": "resilient-chat",
}


def _handlers() -> dict[str, str]:
    template = load_template()
    return {
        name: str(resource["Properties"]["Handler"])
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def test_given_the_template_then_each_chat_function_keeps_its_agreed_handler(
    functions: dict[str, dict[str, Any]],
) -> None:
    handlers = {name: fn["Properties"]["Handler"] for name, fn in functions.items()}
    assert handlers == EXPECTED_HANDLERS


def test_given_the_globals_then_every_function_is_one_arm64_python312_package_with_powertools(
    template: Template,
) -> None:
    defaults = template["Globals"]["Function"]
    assert defaults["CodeUri"] == "functions/"
    assert defaults["Runtime"] == "python3.12"
    assert defaults["Architectures"] == ["arm64"]
    assert defaults["Tracing"] == "Active"
    (layer,) = defaults["Layers"]
    assert "017000801446:layer:AWSLambdaPowertoolsPythonV3-python312-arm64:" in layer["Fn::Sub"]
    variables = defaults["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == "resilient-chat"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "ResilientChat"
    assert {"MESSAGES_TABLE", "CONNECTIONS_TABLE"} <= variables.keys()


@pytest.mark.parametrize("function_name", sorted(EXPECTED_HANDLERS))
def test_given_a_function_when_its_handler_module_is_looked_up_then_the_file_exists(
    function_name: str,
) -> None:
    module, _, _ = _handlers()[function_name].rpartition(".")
    path = FUNCTIONS_DIR.joinpath(*module.split(".")).with_suffix(".py")
    assert path.is_file(), f"{function_name}: {path} does not exist"


@pytest.mark.parametrize("function_name", sorted(EXPECTED_HANDLERS))
def test_given_a_function_when_its_handler_is_imported_like_lambda_does_then_it_is_callable(
    function_name: str,
) -> None:
    module, _, attribute = _handlers()[function_name].rpartition(".")
    # A fresh interpreter with only functions/ on the path: what the Lambda runtime sees (plus the layer).
    env = {**os.environ, **IMPORT_ENV, "PYTHONPATH": str(FUNCTIONS_DIR)}
    code = (
        "import importlib, sys\n"
        f"handler = getattr(importlib.import_module({module!r}), {attribute!r})\n"
        "sys.exit(0 if callable(handler) else 3)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=FUNCTIONS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{function_name} ({module}.{attribute}):\n{result.stderr}"


def test_given_each_function_then_it_logs_to_its_own_group_with_a_retention(
    functions: dict[str, dict[str, Any]], resources: dict[str, dict[str, Any]]
) -> None:
    for name, function in functions.items():
        log_group_ref = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        log_group = resources[log_group_ref]
        assert log_group["Type"] == "AWS::Logs::LogGroup", name
        assert "RetentionInDays" in log_group["Properties"], name


def test_given_the_fanout_then_it_posts_to_the_apis_own_endpoint_never_the_custom_domain(
    functions: dict[str, dict[str, Any]],
) -> None:
    # the stream handler (small rooms), the worker, and the presence keeper (a region's coming or going)
    posting = {"FanoutFunction", "FanoutWorkerFunction", "PresenceKeeperFunction"}
    for name in posting:
        variables = functions[name]["Properties"]["Environment"]["Variables"]
        endpoint = variables["WEBSOCKET_MANAGEMENT_ENDPOINT"]["Fn::Sub"]
        assert endpoint == "https://${WebSocketApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${StageName}"
    for name, function in functions.items():
        if name not in posting:
            assert "WEBSOCKET_MANAGEMENT_ENDPOINT" not in function["Properties"].get("Environment", {}).get(
                "Variables", {}
            ), name

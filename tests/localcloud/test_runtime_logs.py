"""Log records carry the invocation that wrote them, as in Lambda, although the local runtime
runs a region's functions on threads of one process around one shared powertools Logger."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from localcloud.lambda_.context import LambdaContext
from localcloud.lambda_.runtime import invoke, load_handler

HANDLERS = """
import io, threading
from aws_lambda_powertools import Logger

output = io.StringIO()
logger = Logger(service="runtime-logs-test", logger_handler=__import__("logging").StreamHandler(output))
slow_started, fast_done = threading.Event(), threading.Event()


@logger.inject_lambda_context
def slow(event, context):
    slow_started.set()
    fast_done.wait(10)  # another function's invocation runs meanwhile
    logger.info("slow done")


@logger.inject_lambda_context
def fast(event, context):
    slow_started.wait(10)
    logger.info("fast done")
    fast_done.set()
"""


def test_concurrent_invocations_log_their_own_function_name_and_request_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "runtime_logs_probe.py").write_text(HANDLERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    slow, fast = load_handler("runtime_logs_probe.slow"), load_handler("runtime_logs_probe.fast")
    contexts = {
        "slow done": LambdaContext("resilient-chat-FanoutFunction", "us-east-1", 256, 30),
        "fast done": LambdaContext("resilient-chat-HttpApiFunction", "us-east-1", 256, 30),
    }
    threads = [
        threading.Thread(target=invoke, args=(slow, {}, contexts["slow done"])),
        threading.Thread(target=invoke, args=(fast, {}, contexts["fast done"])),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    import runtime_logs_probe  # type: ignore[import-not-found]

    records = [json.loads(line) for line in runtime_logs_probe.output.getvalue().splitlines()]
    assert sorted(r["message"] for r in records) == ["fast done", "slow done"]
    for record in records:
        context = contexts[record["message"]]
        assert record["function_name"] == context.function_name
        assert record["function_request_id"] == context.aws_request_id

"""With TraceAwsCalls on, X-Ray must not receive what a handler answers: acks, error frames and
history pages carry message text. Run in a subprocess: the tracer is chosen at import time and
patches botocore for the whole process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import contextlib, json
from chat import observability
from chat.handlers import ws_default
from localcloud.lambda_.context import LambdaContext
from tests.integration.helpers import ws

recorded = []

class Subsegment:
    def put_metadata(self, key, value, namespace=None):
        recorded.append(["metadata", key, value])

    def put_annotation(self, key, value):
        recorded.append(["annotation", key, value])

class Provider:
    @contextlib.contextmanager
    def in_subsegment(self, name=None, **kwargs):
        recorded.append(["subsegment", name, None])
        yield Subsegment()

observability._tracer.provider = Provider()
event = ws("$default", "c1", body='{"action": "shout", "text": "a private line"}')
response = ws_default.handler(event, LambdaContext("f", "us-east-1", 128, 3))
print(json.dumps({"response": response, "recorded": recorded}, default=str))
"""


def test_a_traced_handler_records_its_subsegment_but_not_its_response() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POWERTOOLS_TRACE", "CI"))}
    env.update(
        POWERTOOLS_TRACE_DISABLED="false",  # TraceAwsCalls=true
        LAMBDA_TASK_ROOT=str(ROOT),  # in Lambda: powertools disables its tracer anywhere else
        AWS_XRAY_CONTEXT_MISSING="IGNORE_ERROR",
        POWERTOOLS_SERVICE_NAME="resilient-chat",
        PYTHONPATH=os.pathsep.join([str(ROOT / "functions"), str(ROOT)]),
    )
    run = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert "shout" in result["response"]["body"]  # the answer that must stay out of X-Ray
    kinds = [kind for kind, _, _ in result["recorded"]]
    assert kinds.count("subsegment") == 1  # the handler was traced
    assert "metadata" not in kinds, result["recorded"]
    assert "private line" not in json.dumps(result["recorded"])
    assert "shout" not in json.dumps(result["recorded"])

"""The idle connection-month, counted on the local stack in quick mode: a heartbeat is two
WebSocket messages and no invocation now; before issue 17 it invoked the `$default` function."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main

pytestmark = pytest.mark.timeout(240)


def test_a_heartbeat_is_two_messages_and_no_invocation_and_the_idle_month_is_priced(tmp_path: Path) -> None:
    assert main(["idle", "--quick", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "idle.json").read_text())

    assert result["perHeartbeat"] == {"apigateway.WebSocketMessage": 2.0}  # ping and pong, nothing else
    assert result["perHeartbeatBefore"]["lambda.Invoke:DefaultRouteFunction"] == 1.0
    reconnect = result["perReconnect"]
    for function in ("AuthorizerFunction", "ConnectFunction", "DisconnectFunction", "HttpApiFunction"):
        assert reconnect[f"lambda.Invoke:{function}"] == 1, function
    now, before = result["month"]["now"], result["month"]["before"]
    assert now["heartbeatSeconds"] == 150
    assert result["perRenewal"] == {"lambda.Invoke:HttpApiFunction": 1}  # POST /session, no AWS call
    # invocations: the reconnects' and the session renewals' only
    assert now["invocationsPerMonth"] == 4 * now["reconnectsPerMonth"] + now["renewalsPerMonth"]
    assert now["dollars"]["connectionMinutes"] == before["dollars"]["connectionMinutes"] == 0.0108
    assert now["dollars"]["total"] <= 0.05 < before["dollars"]["total"]
    assert now["unpriced"] == []
    assert result["target"]["met"] is True

"""The idle connection-month, counted on the local stack in quick mode: a heartbeat is two
WebSocket messages and one DynamoDB Query made by API Gateway (no invocation) whose pong names the
room's newest message; before issue 17 it invoked the `$default` function. The 2-hour reconnect is
the page's make-before-break (the next connection opens before the old one closes): the user never
leaves the room, so it writes no presence membership and invokes no fan-out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main

pytestmark = pytest.mark.timeout(240)


def test_a_heartbeat_is_two_messages_one_query_and_no_invocation_and_the_idle_month_is_priced(
    tmp_path: Path,
) -> None:
    assert main(["idle", "--quick", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "idle.json").read_text())

    # ping, pong and the integration's Query, nothing else; the pong named the room's message
    assert result["perHeartbeat"] == {"apigateway.WebSocketMessage": 2.0, "dynamodb.Query": 1.0}
    assert result["pongNamesTheNewestMessage"] is True
    assert result["perHeartbeatBefore"]["lambda.Invoke:DefaultRouteFunction"] == 1.0
    reconnect = result["perReconnect"]
    for function in ("AuthorizerFunction", "ConnectFunction", "DisconnectFunction", "HttpApiFunction"):
        assert reconnect[f"lambda.Invoke:{function}"] == 1, function
    # make-before-break: no fan-out anywhere, no presence frame, the membership item as it was;
    # the writes are the connections table's (the connection item, and the user's slot twice)
    assert not any(op.startswith("lambda.Invoke:Fanout") for op in reconnect)
    assert result["membershipUntouchedByReconnect"] is True
    assert result["framesBesidePongs"] == []
    opened, closed = result["reconnectSteps"]["openNext"], result["reconnectSteps"]["closeOld"]
    assert (opened["dynamodb.PutItem"], opened["dynamodb.UpdateItem"]) == (1, 1)
    assert closed == {
        "dynamodb.DeleteItem": 1,
        "dynamodb.UpdateItem": 1,
        "lambda.Invoke:DisconnectFunction": 1,
    }
    assert result["keeperBeatDuringCount"] is False
    now, largest, before = (result["month"][name] for name in ("now", "nowLargestItem", "before"))
    assert now["heartbeatSeconds"] == 150
    # POST /session: one invocation, and one read of the session's sign-out item
    assert result["perRenewal"] == {"dynamodb.GetItem": 1, "lambda.Invoke:HttpApiFunction": 1}
    # invocations: the reconnects' and the session renewals' only
    assert now["invocationsPerMonth"] == 4 * now["reconnectsPerMonth"] + now["renewalsPerMonth"]
    assert now["dollars"]["connectionMinutes"] == before["dollars"]["connectionMinutes"] == 0.0108
    # a typical message is one eventually consistent read unit's half; the largest one costs more
    assert now["heartbeatReadUnits"] == 0.5
    assert largest["heartbeatReadUnits"] > now["heartbeatReadUnits"]
    assert now["dollars"]["total"] < largest["dollars"]["total"]
    assert now["dollars"]["total"] <= 0.05 < before["dollars"]["total"]
    assert now["unpriced"] == []
    assert result["target"]["met"] is True
    # the active room's heartbeat is priced per message, per listener
    active = result["activeRoom"]
    assert active["pingsPerMessageAtMost"] == 15
    assert active["dollarsPerMillionMessagesPerListener"] > 0
    # the presence keepers are a fixed cost per region, reported beside the month, not in it
    assert result["keeperPerRegionMonth"]["total"] > 0
    assert result["keeperPerConnectionMonthAt"]["1000"] > result["keeperPerConnectionMonthAt"]["10000"]

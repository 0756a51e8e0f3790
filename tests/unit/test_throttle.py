"""The local stage throttle: bursts up to the burst limit, then the steady rate."""

from __future__ import annotations

import pytest

from localcloud.apigateway import websocket_api
from localcloud.apigateway.websocket_api import TokenBucket


def test_a_burst_is_allowed_then_the_rate_refills_the_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(websocket_api.time, "monotonic", lambda: now[0])
    bucket = TokenBucket(rate=1000, burst=2000)
    assert sum(bucket.take() for _ in range(2500)) == 2000
    now[0] += 0.25
    assert sum(bucket.take() for _ in range(1000)) == 250
    now[0] += 60
    assert sum(bucket.take() for _ in range(5000)) == 2000  # never more than the burst

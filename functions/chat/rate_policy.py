"""A rate as GCRA needs it, worked out once from the settings: the sustained spacing between two
events and how far ahead of it a burst may run. The limiter (a port) keeps the state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chat.ports import RateLimiter


@dataclass(frozen=True)
class RatePolicy:
    """`rate` events per `per_ms`, with bursts of `burst` at once."""

    rate: float
    burst: int
    interval_ms: int  # GCRA's emission interval: the sustained spacing between two events
    tolerance_ms: int  # how far ahead of the sustained rate a sender may run: `burst` at once

    @classmethod
    def of(cls, rate: float, *, per_ms: int, burst: int) -> RatePolicy:
        interval_ms = max(1, round(per_ms / rate))
        return cls(rate=rate, burst=burst, interval_ms=interval_ms, tolerance_ms=interval_ms * (burst - 1))

    def admit(self, limiter: RateLimiter, key: str, *, now_ms: int) -> int | None:
        """None when one more event for `key` is admitted, else the ms until one would be."""
        return limiter.admit(key, now_ms=now_ms, interval_ms=self.interval_ms, tolerance_ms=self.tolerance_ms)

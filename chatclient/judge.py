"""Clients judge the service, not the socket: when a chat client leaves a region, and where it
goes next. The same rule as the chat page's (docs/architecture.md), as plain state: no I/O, the
clock handed in (seconds), so a test can play any sequence of frames and instants.

A `Judge` watches one connection. The client tells it what it sent (`sent`, `pinged`), hands it
every frame it receives (`received`) and every message it holds (`held`), and asks it, whenever
`next_deadline()` passes, what time alone has decided (`check`). Each answer is a `Verdict`:
resend an id, leave the region, or nothing to do. `SickRegions` remembers the regions left and
says which to try next."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ACK_TIMEOUT_MS = 3000  # a send with no ack by then has failed
RESEND_AFTER_MS = 500  # the one resend, on the same socket, after a first failure
ACTIVE_HEARTBEAT_MS = 20000  # ping after this much silence while the room is active ...
ACTIVE_WINDOW_MS = 300000  # ... (a message sent or received within this window)
HEARTBEAT_MS = 150000  # ... and after this much otherwise
HEARTBEAT_JITTER = 0.1  # each silence is drawn within ±10% of its interval
PONG_TIMEOUT_MS = 10000  # a ping with no pong by then has failed
GAP_GRACE_MS = 3000  # how long a pong's newer `latest` may wait for its push
SICK_MS = 60000  # a region left is avoided this long, doubling on each new mark ...
SICK_MAX_MS = 600000  # ... up to this

SEND_FAILURES = frozenset({"unavailable", "internal_error"})  # error codes that fail a send
RETRY_LATER = "rate_limited"  # the client's own pace: not the region's fault
BARE_FAILURE = "Internal server error"  # API Gateway's frame when the integration failed
BARE_THROTTLED = "Too Many Requests"  # API Gateway's frame when the stage throttled a frame


@dataclass(frozen=True)
class Timing:
    """The rule's intervals in milliseconds; tests and drills may shrink them, nothing else may."""

    ack_timeout_ms: float = ACK_TIMEOUT_MS
    resend_after_ms: float = RESEND_AFTER_MS
    active_heartbeat_ms: float = ACTIVE_HEARTBEAT_MS
    active_window_ms: float = ACTIVE_WINDOW_MS
    heartbeat_ms: float = HEARTBEAT_MS
    heartbeat_jitter: float = HEARTBEAT_JITTER
    pong_timeout_ms: float = PONG_TIMEOUT_MS
    gap_grace_ms: float = GAP_GRACE_MS
    sick_ms: float = SICK_MS
    sick_max_ms: float = SICK_MAX_MS


RULE = Timing()


@dataclass(frozen=True)
class Verdict:
    """What the client does now. `kind` is one of:
    - "none": nothing (a frame the rule ignores, or no deadline passed);
    - "ack": `id` was acknowledged; "message": a message frame (the client shows it);
    - "pong": the heartbeat was answered;
    - "resend": `id` failed once: send it again on this socket after `Timing.resend_after_ms`;
    - "later": `id` was throttled (not the region's fault): resend it at the client's own pace;
    - "refused": `id` was refused for what it is (validation): drop it, never resend;
    - "leave": the region is failing this client: close the socket, mark the region sick,
      reconnect elsewhere, catch up, resend the outbox. `reason` says why, in a few words."""

    kind: str
    id: str | None = None
    reason: str = ""


NOTHING = Verdict("none")


def _ms(milliseconds: float) -> float:
    return milliseconds / 1000.0


@dataclass
class Judge:
    """The rule for one connection. `clock()` gives seconds (any origin, never going back);
    `draw()` gives the heartbeat's jitter factor (uniform within ±HEARTBEAT_JITTER by default).

    `last_activity` and `newest_held` outlive a connection: pass them to the next judge."""

    clock: Callable[[], float]
    timing: Timing = RULE
    draw: Callable[[], float] | None = None
    last_activity: float = -math.inf  # a message sent or received
    newest_held: str = ""  # the greatest message id the client holds for the room
    in_flight: dict[str, float] = field(default_factory=dict)  # id -> sent at, oldest first
    failed_in_a_row: int = 0  # failures with no ack in between
    ping_sent: float | None = None
    gap: tuple[str, float] | None = None  # (id a pong announced, deadline for its push)
    left: Verdict | None = None  # once it says leave, it keeps saying so
    _silent_since: float = 0.0
    _silence: float = 1.0  # this silence's jitter factor

    def __post_init__(self) -> None:
        self._quiet()

    # ------------------------------------------------------------------ what the client did
    def sent(self, message_id: str) -> None:
        """A message frame went out on this socket (a first send or a resend)."""
        now = self.clock()
        self.in_flight.pop(message_id, None)  # kept in the order sent: the oldest is first
        self.in_flight[message_id] = now
        self.last_activity = now

    def pinged(self) -> None:
        self.ping_sent = self.clock()

    def held(self, message_id: str) -> None:
        """The client now holds (shows) this message, live or from history."""
        if message_id > self.newest_held:
            self.newest_held = message_id
        if self.gap is not None and self.newest_held >= self.gap[0]:
            self.gap = None

    # ------------------------------------------------------------------ what the region said
    def received(self, frame: Mapping[str, Any]) -> Verdict:
        self._quiet()
        kind = frame.get("type")
        if kind == "ack":
            message_id = str(frame.get("id"))
            if self.in_flight.pop(message_id, None) is not None:
                self.failed_in_a_row = 0
            self.last_activity = self.clock()
            return Verdict("ack", message_id)
        if kind == "message":
            self.last_activity = self.clock()
            return Verdict("message", str(frame.get("message", {}).get("id")))
        if kind == "pong":
            return self._pong(frame)
        if kind == "error":
            return self._error(frame)
        if kind is None and "message" in frame:  # API Gateway's own frames carry no type
            return self._bare(str(frame["message"]))
        return NOTHING

    def _pong(self, frame: Mapping[str, Any]) -> Verdict:
        self.ping_sent = None
        latest = frame.get("latest") or ""
        if isinstance(latest, str) and latest > self.newest_held and self.gap is None:
            self.gap = (latest, self.clock() + _ms(self.timing.gap_grace_ms))
        return Verdict("pong")

    def _error(self, frame: Mapping[str, Any]) -> Verdict:
        message_id, code = frame.get("id"), frame.get("code")
        if message_id is None:
            if self.ping_sent is not None:  # the heartbeat's own answer: the backend failed it
                return self._leave(f"heartbeat: {code}")
            return NOTHING
        message_id = str(message_id)
        if message_id not in self.in_flight:
            return NOTHING  # an answer to an attempt already judged
        if code in SEND_FAILURES:
            return self._failure(message_id, str(code))
        del self.in_flight[message_id]
        return Verdict("later" if code == RETRY_LATER else "refused", message_id, str(code))

    def _bare(self, text: str) -> Verdict:
        oldest = next(iter(self.in_flight), None)
        if text == BARE_THROTTLED:
            if oldest is None:
                return NOTHING
            del self.in_flight[oldest]
            return Verdict("later", oldest, "throttled")
        if text != BARE_FAILURE:
            return NOTHING
        if oldest is not None:
            return self._failure(oldest, "internal server error")
        if self.ping_sent is not None:
            return self._leave("heartbeat: internal server error")
        return NOTHING

    # ------------------------------------------------------------------ what time decides
    def check(self) -> Verdict:
        """Whatever a deadline that has passed decides: a missing ack, a missing pong, a gap."""
        if self.left is not None:
            return self.left
        now = self.clock()
        oldest = next(iter(self.in_flight.items()), None)
        if oldest is not None and now - oldest[1] >= _ms(self.timing.ack_timeout_ms):
            return self._failure(oldest[0], "no ack")
        if self.ping_sent is not None and now - self.ping_sent >= _ms(self.timing.pong_timeout_ms):
            return self._leave("no pong")
        if self.gap is not None and now >= self.gap[1]:
            return self._leave(f"gap: {self.gap[0]} not pushed")
        return NOTHING

    def ping_due(self) -> float | None:
        """When the heartbeat should ping (None while a ping is outstanding)."""
        if self.ping_sent is not None:
            return None
        active = self.clock() - self.last_activity <= _ms(self.timing.active_window_ms)
        interval = self.timing.active_heartbeat_ms if active else self.timing.heartbeat_ms
        return self._silent_since + _ms(interval) * self._silence

    def next_deadline(self) -> float | None:
        """The earliest instant at which `check` or `ping_due` may have something new to say."""
        oldest = next(iter(self.in_flight.values()), None)
        deadlines = [] if oldest is None else [oldest + _ms(self.timing.ack_timeout_ms)]
        if self.ping_sent is not None:
            deadlines.append(self.ping_sent + _ms(self.timing.pong_timeout_ms))
        if self.gap is not None:
            deadlines.append(self.gap[1])
        due = self.ping_due()
        if due is not None:
            deadlines.append(due)
        return min(deadlines, default=None)

    # ------------------------------------------------------------------ the rule itself
    def _failure(self, message_id: str, reason: str) -> Verdict:
        self.in_flight.pop(message_id, None)
        self.failed_in_a_row += 1
        if self.failed_in_a_row >= 2:
            return self._leave(f"{reason}, twice in a row")
        return Verdict("resend", message_id, reason)

    def _leave(self, reason: str) -> Verdict:
        self.left = Verdict("leave", reason=reason)
        return self.left

    def _quiet(self) -> None:
        """A frame arrived: a new silence starts, with its own jitter."""
        self._silent_since = self.clock()
        spread = self.timing.heartbeat_jitter
        self._silence = self.draw() if self.draw else random.uniform(1 - spread, 1 + spread)  # noqa: S311


@dataclass
class SickRegions:
    """The regions a client left, each avoided for SICK_MS, doubled on each new mark of the same
    region (capped at SICK_MAX_MS). Never a reason to move by itself: it only says where to go
    when the client has to connect."""

    clock: Callable[[], float]
    timing: Timing = RULE
    marks: dict[str, tuple[int, float]] = field(default_factory=dict)  # region -> (times, until)

    def mark(self, region: str) -> float:
        """Mark `region` sick; returns for how many seconds."""
        times = self.marks.get(region, (0, 0.0))[0] + 1
        seconds = _ms(min(self.timing.sick_ms * 2 ** (times - 1), self.timing.sick_max_ms))
        self.marks[region] = (times, self.clock() + seconds)
        return seconds

    def sick(self, region: str | None) -> bool:
        return region in self.marks and self.clock() < self.marks[region][1]

    def any(self) -> bool:
        return any(self.sick(region) for region in self.marks)

    def choose(self, regions: Sequence[str]) -> list[str]:
        """The regions to try, in order: every one not sick (in the order given); if all are
        sick, fail open: the one whose mark ends first."""
        well = [region for region in regions if not self.sick(region)]
        if well or not regions:
            return well
        return [min(regions, key=lambda region: self.marks[region][1])]

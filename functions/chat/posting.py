"""Posting frames to connections within an invocation's time: one connection's posts in order,
what became of them, and what is left to post.

`time_left` is the seconds left to *start* a post. The handler makes it from the Lambda
context's remaining time less a margin (chat/push.py, POSTING_MARGIN_SECONDS) that covers the
posts still in flight when it runs out and the hand-back of what was not posted. Once it is at
or under 0 no post starts; a connection's frames from there on are its `unsent` suffix.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from chat.errors import StoreError
from chat.ports import ConnectionStore, Delivery, Pusher

TimeLeft = Callable[[], float]  # seconds left to start a post; at or under 0: none starts


def unbounded() -> float:
    return math.inf


def time_to_post(remaining_ms: Callable[[], int], margin_seconds: float) -> TimeLeft:
    """The time left to start posts, from the invocation's remaining time (the Lambda context's
    `get_remaining_time_in_millis`) less the margin the posts in flight and the hand-back need."""
    return lambda: remaining_ms() / 1000 - margin_seconds


@dataclass
class Outcome:
    """One connection's posts. Frames from index `unsent` on were never started."""

    delivered: int = 0
    failed: list[int] = field(default_factory=list)  # indexes of the frames whose posts failed
    unsent: int | None = None
    gone: bool = False


@dataclass
class Posted:
    delivered: int = 0
    failed_posts: int = 0
    gone: int = 0
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    kept_gone: list[tuple[str, str]] = field(default_factory=list)  # (connection id, error)

    def leftovers(self, frames_of: Callable[[str], Sequence[bytes]]) -> list[tuple[str, tuple[bytes, ...]]]:
        """Each connection's frames that it did not get (posts that failed, then those never
        started), in order; `frames_of` gives a connection's frames as they were posted."""
        left = []
        for connection_id, outcome in self.outcomes.items():
            frames = frames_of(connection_id)
            rest = [frames[i] for i in outcome.failed]
            if outcome.unsent is not None:
                rest += frames[outcome.unsent :]
            left.append((connection_id, tuple(rest)))
        return left

    @property
    def late(self) -> dict[str, int]:
        """The connections whose time to post ran out before all their frames were posted, and
        the index of the first frame each was not posted."""
        return {c: outcome.unsent for c, outcome in self.outcomes.items() if outcome.unsent is not None}


def deliver(pusher: Pusher, connection_id: str, frames: Sequence[bytes], time_left: TimeLeft) -> Outcome:
    """Post a connection its frames in order, starting none once the time to post is up."""
    outcome = Outcome()
    for index, frame in enumerate(frames):
        delivery = Delivery.OUT_OF_TIME if time_left() <= 0 else pusher.push(connection_id, frame)
        if delivery is Delivery.GONE:
            outcome.gone = True
            break
        if delivery is Delivery.OUT_OF_TIME:
            outcome.unsent = index
            break
        if delivery is Delivery.DELIVERED:
            outcome.delivered += 1
        else:
            outcome.failed.append(index)
    return outcome


def settle(
    outcomes: Iterator[Outcome],
    connection_ids: Sequence[str],
    connections: ConnectionStore,
    *,
    connected_before: str | None = None,
) -> Posted:
    """Tally the outcomes as they come (in `connection_ids` order), removing gone connections
    (with `connected_before`, only those that connected before then: fanout.CONNECT_GRACE_SECONDS)."""
    posted = Posted()
    for connection_id, outcome in zip(connection_ids, outcomes, strict=True):
        posted.outcomes[connection_id] = outcome
        posted.delivered += outcome.delivered
        posted.failed_posts += len(outcome.failed)
        if outcome.gone:
            posted.gone += 1
            try:
                connections.delete_connection(connection_id, connected_before=connected_before)
            except StoreError as error:
                # The item's TTL removes it later; the next post gets another 410 and retries.
                posted.kept_gone.append((connection_id, str(error)))
    return posted


def by_frames(leftovers: Iterable[tuple[str, tuple[bytes, ...]]]) -> dict[tuple[bytes, ...], list[str]]:
    """Connections grouped by the frames they still need (none: left out), in the order given."""
    groups: dict[tuple[bytes, ...], list[str]] = defaultdict(list)
    for connection_id, frames in leftovers:
        if frames:
            groups[frames].append(connection_id)
    return dict(groups)

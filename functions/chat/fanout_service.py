"""The fan-out as the stream handler and the page workers call it: chat/fanout.py's rules bound to
this container's connection store, pusher, page queue and settings, with the invocation's time to
post worked out from the Lambda context. The composition root (chat/composition.py) builds one per
container; the ports come as factories, made on first use."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chat import change_stream, fanout, presence_keeper, presence_stream
from chat.fanout_pages import Page
from chat.model import iso_time
from chat.ports import (
    ConnectionCloser,
    ConnectionStore,
    MessageChanges,
    PageQueue,
    PresenceStore,
    Pusher,
    RateLimiter,
)
from chat.posting import TimeLeft, time_to_post
from chat.settings import Settings


@dataclass(frozen=True)
class FanoutService:
    settings: Settings
    connections: Callable[[], ConnectionStore]
    changes: Callable[[], MessageChanges]
    pusher: Callable[[TimeLeft], Pusher]  # one that starts no post once the time left is up
    pages: Callable[[], PageQueue]
    closer: Callable[[], ConnectionCloser]
    posting_margin_seconds: float  # what the posts in flight and the hand-back need
    clock: Callable[[], float]  # seconds since the epoch
    presence: Callable[[], PresenceStore]
    limiter: Callable[[], RateLimiter]  # a large room's count frames, at most one per interval

    def _connected_before(self) -> str:
        """Connections younger than this may still be in their `$connect`: a 410 keeps them."""
        return iso_time(int((self.clock() - fanout.CONNECT_GRACE_SECONDS) * 1000))

    def apply_writes(
        self, records: Sequence[change_stream.MessageWrite | change_stream.TombstoneArrived]
    ) -> change_stream.Applied:
        """The stream's part in edits and deletes: what to push, and the repairs and tombstones."""
        return change_stream.apply_writes(records, changes=self.changes(), region=self.settings.region)

    def presence_frames(
        self, changes: Sequence[presence_stream.MembershipChanged | presence_stream.Typed]
    ) -> presence_stream.PresenceFrames:
        """The frames of the batch's presence and typing changes (chat/presence_stream.py)."""
        if not changes:
            return presence_stream.PresenceFrames()
        return presence_stream.frames_for(
            changes,
            presence=self.presence(),
            limiter=self.limiter(),
            region=self.settings.region,
            now_ms=int(self.clock() * 1000),
        )

    def fan_out(
        self, records: Sequence[fanout.StreamRecord | fanout.RoomFrame], *, remaining_ms: Callable[[], int]
    ) -> fanout.FanoutResult:
        time_left = time_to_post(remaining_ms, self.posting_margin_seconds)
        return fanout.fan_out(
            records,
            connections=self.connections(),
            pusher=self.pusher(time_left),
            pages=self.pages(),
            region=self.settings.region,
            concurrency=self.settings.fanout_concurrency,
            page_posts=self.settings.fanout_page_posts,
            time_left=time_left,
            connected_before=self._connected_before(),
        )

    def post_page(self, page: Page, *, remaining_ms: Callable[[], int]) -> fanout.PageResult:
        time_left = time_to_post(remaining_ms, self.posting_margin_seconds)
        return fanout.post_page(
            page,
            connections=self.connections(),
            pusher=self.pusher(time_left),
            pages=self.pages(),
            concurrency=self.settings.fanout_concurrency,
            time_left=time_left,
            connected_before=self._connected_before(),
        )

    def keep_presence(
        self, *, remaining_ms: Callable[[], int], sleep: Callable[[float], None]
    ) -> tuple[presence_keeper.KeeperReport, list[fanout.FanoutResult]]:
        """One invocation of this region's presence keeper (chat/presence_keeper.py), its frames
        pushed as the stream's are; the fan-outs' results for the handler to log."""
        pushed: list[fanout.FanoutResult] = []

        def push(frames: list[fanout.RoomFrame]) -> None:
            if frames:
                pushed.append(self.fan_out(frames, remaining_ms=remaining_ms))

        keeper = presence_keeper.Keeper(
            self.settings.region,
            presence=self.presence(),
            connections=self.connections(),
            closer=self.closer(),
            push=push,
            limiter=self.limiter(),
            connection_ttl_seconds=self.settings.connection_ttl_seconds,
            clock=self.clock,
            concurrency=self.settings.fanout_concurrency,
        )
        report = keeper.keep(sleep=sleep, remaining_ms=remaining_ms)
        return report, pushed

    def close_user(self, user_id: str) -> int:
        """Close this region's WebSockets of a signed-out user; how many were closed."""
        return self.closer().close_user(user_id)

"""Scheduled every minute: this region's presence keeper (chat/presence_keeper.py). It beats every
15 s for most of the minute, pushes `enter`/`leave` frames when another region dies or
comes back, and repairs this region's memberships. A beat that fails is logged and tried again at
the next one; an invocation that beat not once fails (the errors alarm counts it): a region that
cannot beat is, rightly, dead to the others."""

from __future__ import annotations

import time
from typing import Any

from chat.composition import fanout_service
from chat.observability import count, lambda_handler, logger


@lambda_handler()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    report, pushed = fanout_service().keep_presence(
        remaining_ms=context.get_remaining_time_in_millis, sleep=time.sleep
    )
    count("PresenceBeats", report.beats)
    count("PresenceConnectionsForgotten", report.connections_forgotten)
    count("PresenceMembershipsRemoved", report.memberships_removed)
    count("PresenceFrames", report.frames)
    for result in pushed:
        for room, error in result.unreadable_rooms:
            logger.warning("cannot push a presence change to the room", room=room, error=error)
    for error in report.errors:
        logger.warning("a presence beat failed; the next one tries again", error=error)
    if report.errors and not report.beats:
        raise RuntimeError(f"no presence beat this invocation: {report.errors[-1]}")
    logger.info(
        "presence kept",
        beats=report.beats,
        new_run=report.new_run,
        repaired=report.repaired,
        forgotten=report.connections_forgotten,
        removed=report.memberships_removed,
        regions_changed=report.regions_changed,
    )
    return {"beats": report.beats, "regionsChanged": report.regions_changed}

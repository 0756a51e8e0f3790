"""DynamoDB stream → WebSocket fan-out of messages, presence and typing (small rooms posted here,
large rooms' pages queued for fanout_worker), with partial batch failures
(ReportBatchItemFailures). Posts start only while the invocation has more than
POSTING_MARGIN_SECONDS left; the connections whose posts failed or
that the time ran out on are queued for the workers, and the batch succeeds (a failed batch is
posted again to everyone)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chat.composition import fanout_service
from chat.errors import StoreError
from chat.observability import count, lambda_handler, logger
from chat.stream_images import in_stream_order, parse_changes, parse_records, signed_out_users

if TYPE_CHECKING:
    from chat.fanout import RoomFrame, StreamRecord


def close_signed_out(event: dict[str, Any]) -> None:
    """Close this region's WebSockets of every user whose sign-out the batch carries (best effort:
    a failure is logged, never retried with the batch, which would push its messages again)."""
    for user_id in signed_out_users(event):
        try:
            closed = fanout_service().close_user(user_id)
        except StoreError as error:
            logger.warning("cannot read a signed-out user's connections", user_id=user_id, error=str(error))
            continue
        logger.info("closed a signed-out user's connections", user_id=user_id, closed=closed)


@lambda_handler()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    close_signed_out(event)
    applied = fanout_service().apply_writes(parse_records(event))
    presence = fanout_service().presence_frames(parse_changes(event))
    frames: list[StreamRecord | RoomFrame] = in_stream_order(event, applied.push, presence.frames)
    result = fanout_service().fan_out(frames, remaining_ms=context.get_remaining_time_in_millis)
    count("PresenceFrames", len(presence.frames))
    for room, error in presence.errors:
        logger.warning("cannot read the room's presence; the stream retries it", room=room, error=error)
    count("MessagesFannedOut", result.messages)
    count("ConflictsRepaired", applied.rewritten)
    count("TombstonesMade", applied.tombstones)
    count("DeletedOnTombstone", applied.deleted_on_arrival)
    for message_id, error in applied.errors:
        logger.warning("cannot repair a message's change; the stream retries it", id=message_id, error=error)
    count("Deliveries", result.delivered)
    count("StaleConnectionsRemoved", result.gone)
    count("FailedDeliveries", result.failed_posts)
    count("FanoutPagesQueued", result.pages_queued)
    count("FanoutConnectionsHandedBack", result.handed_back)
    count("FanoutConnectionsOutOfTime", result.late)
    for room, error in result.unreadable_rooms:
        logger.warning("cannot read the room's connections or queue its pages", room=room, error=error)
    for connection_id, error in result.kept_gone:
        logger.warning("cannot remove a gone connection", connection_id=connection_id, error=error)
    failed = dict.fromkeys([*applied.failed, *presence.failed, *result.failed])
    logger.info(
        "fan-out done",
        records=len(event.get("Records", [])),
        failed=len(failed),
        delivered=result.delivered,
        gone=result.gone,
        pages_queued=result.pages_queued,
        out_of_time=result.late,
    )
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in failed]}

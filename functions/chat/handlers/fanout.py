"""DynamoDB stream → WebSocket fan-out (small rooms posted here, large rooms' pages queued for
fanout_worker), with partial batch failures (ReportBatchItemFailures). Posts start only while
the invocation has more than POSTING_MARGIN_SECONDS left; the connections whose posts failed or
that the time ran out on are queued for the workers, and the batch succeeds (a failed batch is
posted again to everyone)."""

from __future__ import annotations

from typing import Any

from chat import clients
from chat.change_stream import MessageWrite, TombstoneArrived, apply_writes
from chat.changes_store import TOMBSTONE
from chat.fanout import fan_out
from chat.observability import count, lambda_handler, logger
from chat.ports import StoreError
from chat.posting import time_to_post
from chat.push import POSTING_MARGIN_SECONDS
from chat.revocations import signed_out_user
from chat.settings import get_settings
from chat.store import message_from_item


def parse_records(event: dict[str, Any]) -> list[MessageWrite | TombstoneArrived]:
    """The batch's writes of messages (new ones, and changes: chat/change_stream.py) and deletes'
    tombstones. An image that is neither is skipped, never reported: retrying cannot fix it, and
    reporting it would block the shard."""
    records: list[MessageWrite | TombstoneArrived] = []
    for record in event.get("Records", []):
        image = record["dynamodb"].get("NewImage")
        sequence = record["dynamodb"]["SequenceNumber"]
        if (
            record["eventName"] not in ("INSERT", "MODIFY")
            or image is None
            or signed_out_user(image) is not None
        ):
            continue
        try:
            if record["dynamodb"]["Keys"]["sk"]["S"] == TOMBSTONE:
                if record["eventName"] == "INSERT":
                    records.append(
                        TombstoneArrived(
                            sequence,
                            image["room"]["S"],
                            image["id"]["S"],
                            image["authorId"]["S"],
                            image["acceptedRegion"]["S"],
                        )
                    )
                continue
            old = record["dynamodb"].get("OldImage")
            records.append(
                MessageWrite(
                    sequence,
                    message_from_item(old) if old else None,
                    message_from_item(image),
                    int(image["expiresAt"]["N"]),
                )
            )
        except (KeyError, TypeError, ValueError):
            logger.error("skipping a record that is not a message", sequence=sequence)
    return records


def close_signed_out(event: dict[str, Any]) -> None:
    """Close this region's WebSockets of every user whose sign-out the batch carries (best effort:
    a failure is logged, never retried with the batch, which would push its messages again)."""
    users = {
        user_id
        for record in event.get("Records", [])
        if record["eventName"] == "INSERT"
        and (user_id := signed_out_user(record["dynamodb"].get("NewImage"))) is not None
    }
    for user_id in sorted(users):
        try:
            closed = clients.socket_closer().close_user(user_id)
        except StoreError as error:
            logger.warning("cannot read a signed-out user's connections", user_id=user_id, error=str(error))
            continue
        logger.info("closed a signed-out user's connections", user_id=user_id, closed=closed)


@lambda_handler()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    close_signed_out(event)
    settings = get_settings()
    time_left = time_to_post(context.get_remaining_time_in_millis, POSTING_MARGIN_SECONDS)
    applied = apply_writes(parse_records(event), changes=clients.message_changes(), region=settings.region)
    result = fan_out(
        applied.push,
        connections=clients.connection_store(),
        pusher=clients.pusher().until(time_left),
        pages=clients.page_queue(),
        region=settings.region,
        concurrency=settings.fanout_concurrency,
        page_posts=settings.fanout_page_posts,
        time_left=time_left,
    )
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
    failed = dict.fromkeys([*applied.failed, *result.failed])
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

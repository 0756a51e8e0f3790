"""What a DynamoDB stream batch of the messages table carries: new messages, and sign-outs."""

from __future__ import annotations

from typing import Any

from chat.fanout import StreamRecord
from chat.observability import logger
from chat.revocations import signed_out_user
from chat.store import message_from_item


def parse_records(event: dict[str, Any]) -> list[StreamRecord]:
    """The batch's new messages. Only inserts are new messages: a MODIFY is replication settling
    a same-id race. An image that is not a message is skipped, never reported: retrying cannot
    fix it, and reporting it would block the shard."""
    records = []
    for record in event.get("Records", []):
        image = record["dynamodb"].get("NewImage")
        sequence = record["dynamodb"]["SequenceNumber"]
        if record["eventName"] != "INSERT" or image is None or signed_out_user(image) is not None:
            continue
        try:
            records.append(StreamRecord(sequence, message_from_item(image)))
        except (KeyError, TypeError):
            logger.error("skipping a record that is not a message", sequence=sequence)
    return records


def signed_out_users(event: dict[str, Any]) -> list[str]:
    """The users whose sign-out the batch carries, each once, in order."""
    users = {
        user_id
        for record in event.get("Records", [])
        if record["eventName"] == "INSERT"
        and (user_id := signed_out_user(record["dynamodb"].get("NewImage"))) is not None
    }
    return sorted(users)

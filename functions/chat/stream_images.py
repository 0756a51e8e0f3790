"""What a DynamoDB stream batch of the messages table carries: messages and their changes, deletes'
tombstones, and sign-outs."""

from __future__ import annotations

from typing import Any

from chat.change_stream import MessageWrite, TombstoneArrived
from chat.changes_store import TOMBSTONE, tombstone_from_image
from chat.observability import logger
from chat.revocations import signed_out_user
from chat.store import message_from_item


def parse_records(event: dict[str, Any]) -> list[MessageWrite | TombstoneArrived]:
    """The batch's writes of messages (new ones, and their edits and deletes, with the image each
    replaced: chat/change_stream.py) and deletes' tombstones. An image that is neither is skipped,
    never reported: retrying cannot fix it, and reporting it would block the shard."""
    records: list[MessageWrite | TombstoneArrived] = []
    for record in event.get("Records", []):
        image = record["dynamodb"].get("NewImage")
        sequence = record["dynamodb"]["SequenceNumber"]
        if record["eventName"] == "REMOVE" or image is None or signed_out_user(image) is not None:
            continue
        try:
            if image.get("sk") == {"S": TOMBSTONE}:  # an image holds its item's key
                if record["eventName"] == "INSERT":
                    records.append(tombstone_from_image(sequence, image))
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


def signed_out_users(event: dict[str, Any]) -> list[str]:
    """The users whose sign-out the batch carries, each once, in order."""
    users = {
        user_id
        for record in event.get("Records", [])
        if record["eventName"] == "INSERT"
        and (user_id := signed_out_user(record["dynamodb"].get("NewImage"))) is not None
    }
    return sorted(users)

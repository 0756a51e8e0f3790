"""What a DynamoDB stream batch of the messages table carries: messages and their changes, deletes'
tombstones, sign-outs, and presence and typing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

from chat.change_stream import MessageWrite, TombstoneArrived
from chat.changes_store import TOMBSTONE, tombstone_from_image
from chat.model import Author
from chat.observability import logger
from chat.presence import KIND_PRESENCE, KIND_TYPING
from chat.presence_store import image_kind, member_from_image
from chat.presence_stream import MembershipChanged, Typed
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
        if image_kind(image) is not None:
            continue  # presence and typing (chat/presence_stream.py)
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


def parse_changes(event: dict[str, Any]) -> list[MembershipChanged | Typed]:
    """The batch's membership INSERTs and REMOVEs and typing writes, in stream order. Anything
    else (and any image that is not whole) is skipped: retrying could not fix it."""
    changes: list[MembershipChanged | Typed] = []
    for record in event.get("Records", []):
        data = record["dynamodb"]
        sequence, name = data["SequenceNumber"], record["eventName"]
        image = data.get("OldImage") if name == "REMOVE" else data.get("NewImage")
        try:
            kind = image_kind(image)
            if image is None or kind is None:
                continue
            if kind == KIND_PRESENCE and name in ("INSERT", "REMOVE"):
                changes.append(
                    MembershipChanged(sequence, member_from_image(image), entered=name == "INSERT")
                )
            elif kind == KIND_TYPING and name in ("INSERT", "MODIFY"):
                author = Author(user_id=image["userId"]["S"], name=image["name"]["S"])
                changes.append(
                    Typed(
                        sequence, image["room"]["S"], author, image["region"]["S"], image["connectionId"]["S"]
                    )
                )
        except (KeyError, TypeError, ValueError):
            continue
    return changes


class _FromRecord(Protocol):
    @property
    def sequence_number(self) -> str: ...


_Item = TypeVar("_Item", bound=_FromRecord)


def in_stream_order(event: dict[str, Any], *groups: Iterable[_Item]) -> list[_Item]:
    """The items of every group, each from one of the batch's records, in the records' order (a
    typing frame before the message its typist then sent, an `enter` before its user's first
    message), whichever group each came from."""
    position = {
        str(record.get("dynamodb", {}).get("SequenceNumber")): index
        for index, record in enumerate(event.get("Records", []))
    }
    items = [item for group in groups for item in group]
    return sorted(items, key=lambda item: position.get(item.sequence_number, len(position)))

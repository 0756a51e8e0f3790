"""DynamoDB adapter for edits, deletes and the stream's repairs: each is one conditional write.

The conditions are chat/edits.py's rules in DynamoDB's words: an edit or delete never writes over
a deleted message, and the version it writes is the stored one plus one. When a condition fails,
the item it found (ReturnValuesOnConditionCheckFailure) tells which answer is due, with no read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chat import edits
from chat.aws_errors import AWS_ERRORS, is_condition_failure, old_item, store_error
from chat.change_stream import TombstoneArrived
from chat.errors import NotFound, StoreError
from chat.model import Change, Message
from chat.store import message_from_item, message_key, message_to_item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

_NOT_DELETED = "(attribute_not_exists(deleted) OR deleted = :false)"
_NEXT_VERSION = "version = if_not_exists(version, :one) + :one"
# A rewrite that keeps losing races to newer lower states is retried with the stream record.
_REWRITE_ATTEMPTS = 4
TOMBSTONE_PREFIX = "deleted#"
TOMBSTONE = "deleted"


class DynamoMessageChanges:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def edit(
        self, room: str, message_id: str, author_id: str, *, text: str, edited_at: str, region: str
    ) -> tuple[Message, bool]:
        """The edited message and True; or the stored one and False when it holds `text` already.
        NotFound, MessageDeleted."""
        message, written = self._update(
            room,
            message_id,
            author_id,
            f"SET #text = :text, editedAt = :at, deleted = :false, acceptedRegion = :region, {_NEXT_VERSION}",
            f"attribute_exists(pk) AND {_NOT_DELETED} AND #text <> :text",
            {":text": {"S": text}, ":at": {"S": edited_at}, ":region": {"S": region}},
        )
        # Refused: the rule that refused it says the answer (MessageDeleted, or unchanged).
        if not written and edits.edited(edits.change_of(message), text, now=edited_at) is not None:
            raise StoreError("UpdateItem", "ConditionalCheckFailedException")
        return message, written

    def delete(self, room: str, message_id: str, author_id: str, *, region: str) -> tuple[Message, bool]:
        """The deleted message and True; or the stored one and False when it was deleted already.
        NotFound."""
        message, written = self._update(
            room,
            message_id,
            author_id,
            f"SET deleted = :true, acceptedRegion = :region, {_NEXT_VERSION} REMOVE #text, editedAt",
            f"attribute_exists(pk) AND {_NOT_DELETED}",
            {":true": {"BOOL": True}, ":region": {"S": region}},
        )
        if not written and edits.deleted(edits.change_of(message)) is not None:
            raise StoreError("UpdateItem", "ConditionalCheckFailedException")
        return message, written

    def _update(
        self,
        room: str,
        message_id: str,
        author_id: str,
        update: str,
        condition: str,
        values: dict[str, AttributeValueTypeDef],
    ) -> tuple[Message, bool]:
        """(the message as written, True) or, when the condition failed, (what it found, False)."""
        try:
            answer = self._client.update_item(
                TableName=self._table,
                Key=message_key(room, message_id, author_id),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames={"#text": "text"},
                ExpressionAttributeValues={":false": {"BOOL": False}, ":one": {"N": "1"}, **values},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise store_error("UpdateItem", error) from error
            item = old_item(error)
            if item is None:
                raise NotFound() from None
            return message_from_item(item), False
        except AWS_ERRORS as error:
            raise store_error("UpdateItem", error) from error
        return message_from_item(answer["Attributes"]), True

    def rewrite(self, message: Message, *, expires_at: int, over: Change) -> bool:
        """Write `message` while the item holds a state it outranks (`over`, as the stream saw
        it, or a later one): True once written, False when the item is gone or holds a state at
        least as great. StoreError when it keeps losing races: the stream retries the record."""
        target = edits.change_of(message)
        expected = over
        for _ in range(_REWRITE_ATTEMPTS):
            condition, values = _holds(expected)
            try:
                self._client.put_item(
                    TableName=self._table,
                    Item=message_to_item(message, expires_at),
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#text": "text"},
                    ExpressionAttributeValues=values,
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as error:
                if not is_condition_failure(error):
                    raise store_error("PutItem", error) from error
                item = old_item(error)
                if item is None:
                    return False  # expired (TTL) meanwhile: nothing to write over
                expected = edits.change_of(message_from_item(item))
                if not edits.regressed(target, expected):
                    return False
                continue
            except AWS_ERRORS as error:
                raise store_error("PutItem", error) from error
            return True
        raise StoreError("PutItem", "ConditionalCheckFailedException")

    def record_delete(self, message: Message, *, expires_at: int) -> None:
        """The delete's tombstone: its own item, which only deletes write (so no edit, whatever
        its timestamp, can replace it), replicated to every region like any item."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    **tombstone_key(message.room, message.id, message.authorId),
                    "room": {"S": message.room},
                    "id": {"S": message.id},
                    "authorId": {"S": message.authorId},
                    "acceptedRegion": {"S": message.acceptedRegion},
                    "expiresAt": {"N": str(expires_at)},
                },
                ConditionExpression="attribute_not_exists(pk)",  # once: a second put would replicate
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise store_error("PutItem", error) from error
        except AWS_ERRORS as error:
            raise store_error("PutItem", error) from error


def tombstone_from_image(sequence_number: str, image: dict[str, Any]) -> TombstoneArrived:
    """A tombstone's stream image, as the stream handler reads it (KeyError if it is not one)."""
    return TombstoneArrived(
        sequence_number,
        image["room"]["S"],
        image["id"]["S"],
        image["authorId"]["S"],
        image["acceptedRegion"]["S"],
    )


def tombstone_key(room: str, message_id: str, author_id: str) -> dict[str, AttributeValueTypeDef]:
    """A partition of its own (never a room's: no history read or heartbeat meets it); `sk` is
    what the fan-out's stream filter selects tombstones by."""
    return {"pk": {"S": f"{TOMBSTONE_PREFIX}{room}#{message_id}#{author_id}"}, "sk": {"S": TOMBSTONE}}


def _holds(change: Change) -> tuple[str, dict[str, AttributeValueTypeDef]]:
    """A condition that holds while the item's state is exactly `change` (items stored before
    edits existed have no version or deleted: version 1, not deleted)."""
    values: dict[str, AttributeValueTypeDef] = {":v": {"N": str(change.version)}}
    parts = ["attribute_exists(pk)"]
    parts.append("(attribute_not_exists(version) OR version = :v)" if change.version == 1 else "version = :v")
    if change.deleted:
        parts.append("deleted = :true")
        values[":true"] = {"BOOL": True}
    else:
        parts.append(_NOT_DELETED)
        values[":false"] = {"BOOL": False}
    for name, placeholder, value in (("#text", ":text", change.text), ("editedAt", ":at", change.editedAt)):
        if value is None:
            parts.append(f"attribute_not_exists({name})")
        else:
            parts.append(f"{name} = {placeholder}")
            values[placeholder] = {"S": value}
    return " AND ".join(parts), values

"""The DynamoDB adapters of the message and connection stores: the only module that knows the
tables' shapes (the connection slots and the rate limiter keep their own items: connection_slots.py,
rate_limiter.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chat.aws_errors import AWS_ERRORS, is_condition_failure, old_item, store_error
from chat.connection_slots import (
    DynamoConnectionSlots,
    expired_entries,
    parse_entry,
)
from chat.model import Message
from chat.ports import SlotChange
from chat.presence import Member

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, DeleteItemInputTypeDef, QueryInputTypeDef

    from chat.presence_store import DynamoPresence

    Item = dict[str, AttributeValueTypeDef]

ROOM_INDEX = "room-index"
USER_INDEX = "user-index"  # a user's connections (tests and operators; the cap uses slots)
# A message's sort key binds its writer: `<id>#<authorId>`. '#' sorts before '$', so every key of
# one id lies between `<id>#` and `<id>$`, and `sk > "<id>$"` starts after all of them.
_AUTHOR_SEPARATOR = "#"
_AFTER_ID = "$"


def message_key(room: str, message_id: str, author_id: str) -> Item:
    return {"pk": {"S": f"room#{room}"}, "sk": {"S": f"{message_id}{_AUTHOR_SEPARATOR}{author_id}"}}


def message_to_item(message: Message, expires_at: int) -> Item:
    """A deleted message's item has no `text` (and an unedited one no `editedAt`)."""
    item: Item = {
        **message_key(message.room, message.id, message.authorId),
        "id": {"S": message.id},
        "room": {"S": message.room},
        "author": {"S": message.author},
        "authorId": {"S": message.authorId},
        "sentAt": {"S": message.sentAt},
        "acceptedRegion": {"S": message.acceptedRegion},
        "transport": {"S": message.transport},
        "expiresAt": {"N": str(expires_at)},
        "version": {"N": str(message.version)},
        "deleted": {"BOOL": message.deleted},
    }
    if message.text is not None:
        item["text"] = {"S": message.text}
    if message.editedAt is not None:
        item["editedAt"] = {"S": message.editedAt}
    return item


def message_from_item(item: Mapping[str, Any]) -> Message:
    """Read a message from a DynamoDB item or stream image (the same wire format). Items stored
    before edits existed read as version 1, not edited, not deleted."""
    return Message(
        id=item["id"]["S"],
        room=item["room"]["S"],
        author=item["author"]["S"],
        authorId=item["authorId"]["S"],
        text=item["text"]["S"] if "text" in item else None,
        sentAt=item["sentAt"]["S"],
        acceptedRegion=item["acceptedRegion"]["S"],
        transport=item["transport"]["S"],
        version=int(item["version"]["N"]) if "version" in item else 1,
        editedAt=item["editedAt"]["S"] if "editedAt" in item else None,
        deleted=bool(item["deleted"]["BOOL"]) if "deleted" in item else False,
    )


def connection_item(
    connection_id: str, *, room: str, user_id: str, connected_at: str, expires_at: int
) -> Item:
    return {
        "connectionId": {"S": connection_id},
        "room": {"S": room},
        "userId": {"S": user_id},
        "connectedAt": {"S": connected_at},
        "expiresAt": {"N": str(expires_at)},
    }


class DynamoMessageStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def put_message(self, message: Message, *, expires_at: int) -> tuple[Message, bool]:
        try:
            self._client.put_item(
                TableName=self._table,
                Item=message_to_item(message, expires_at),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise store_error("PutItem", error) from error
            stored = old_item(error)
            return (message_from_item(stored) if stored else self._get(message)), False
        except AWS_ERRORS as error:
            raise store_error("PutItem", error) from error
        return message, True

    def _get(self, message: Message) -> Message:
        try:
            item = self._client.get_item(
                TableName=self._table,
                Key=message_key(message.room, message.id, message.authorId),
                ConsistentRead=True,
            ).get("Item")
        except AWS_ERRORS as error:
            raise store_error("GetItem", error) from error
        return message_from_item(item) if item else message

    def list_messages(self, room: str, *, after: str | None, limit: int) -> tuple[list[Message], str | None]:
        condition = "pk = :pk"
        values: dict[str, AttributeValueTypeDef] = {":pk": {"S": f"room#{room}"}}
        if after is not None:
            condition += " AND sk > :after"
            values[":after"] = {"S": after + _AFTER_ID}
        # One item more than the page tells whether the page's last id has more messages (the
        # same id from other authors), which then join the page: a page never splits an id.
        items, last_key = self._query(
            KeyConditionExpression=condition, ExpressionAttributeValues=values, Limit=limit + 1
        )
        if len(items) <= limit and last_key is None:
            return [message_from_item(item) for item in items], None
        page, spill = items[:limit], items[limit:]
        last_id = page[-1]["id"]["S"]
        page += [item for item in spill if item["id"]["S"] == last_id]
        if last_key is not None and page[-1] is items[-1]:
            page += self._rest_of_id(room, last_id, last_key)
        more = last_key is not None or len(page) < len(items)
        return [message_from_item(item) for item in page], (last_id if more else None)

    def _rest_of_id(self, room: str, message_id: str, start: Mapping[str, Any]) -> list[Item]:
        rest: list[Item] = []
        last_key: Mapping[str, Any] | None = start
        while last_key is not None:
            items, last_key = self._query(
                KeyConditionExpression="pk = :pk AND begins_with(sk, :id)",
                ExpressionAttributeValues={
                    ":pk": {"S": f"room#{room}"},
                    ":id": {"S": message_id + _AUTHOR_SEPARATOR},
                },
                ExclusiveStartKey=last_key,
            )
            rest += items
        return rest

    def _query(self, **query: Any) -> tuple[list[Item], Mapping[str, Any] | None]:
        try:
            page = self._client.query(TableName=self._table, ScanIndexForward=True, **query)
        except AWS_ERRORS as error:
            raise store_error("Query", error) from error
        return list(page.get("Items", [])), page.get("LastEvaluatedKey")

    def probe(self) -> None:
        # A write whose condition can never hold: it proves the replica accepts writes without
        # storing anything, so health checks neither replicate nor wake the fan-out.
        try:
            self._client.put_item(
                TableName=self._table,
                Item=message_key("health-probe", "0" * 26, "health"),
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(pk)",
            )
        except ClientError as error:
            if is_condition_failure(error):
                return
            raise store_error("PutItem", error) from error
        except AWS_ERRORS as error:
            raise store_error("PutItem", error) from error


class DynamoConnectionStore:
    """A connection's records: its item and its user's slot in this region's table, and, through
    `presence`, the user's membership of the room in the global table (chat/presence.py), which
    every way of forgetting a connection keeps true."""

    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        *,
        presence: DynamoPresence,
        region: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._table = table
        self._slots = DynamoConnectionSlots(client, table)
        self._presence = presence
        self._region = region
        self._clock = clock

    def put_connection(
        self, connection_id: str, *, room: str, user_id: str, connected_at: str, expires_at: int
    ) -> None:
        item = connection_item(
            connection_id, room=room, user_id=user_id, connected_at=connected_at, expires_at=expires_at
        )
        try:
            self._client.put_item(TableName=self._table, Item=item)
        except AWS_ERRORS as error:
            raise store_error("PutItem", error) from error

    def delete_connection(self, connection_id: str, *, connected_before: str | None = None) -> None:
        """Forget the connection and give its user's slot back (`$disconnect`, or a 410 from a
        post). With `connected_before`, one conditional delete that keeps a connection that
        connected at or after then (fanout.CONNECT_GRACE_SECONDS says why)."""
        request: DeleteItemInputTypeDef = {
            "TableName": self._table,
            "Key": {"connectionId": {"S": connection_id}},
            "ReturnValues": "ALL_OLD",
        }
        if connected_before is not None:
            request["ConditionExpression"] = "attribute_not_exists(connectedAt) OR connectedAt < :before"
            request["ExpressionAttributeValues"] = {":before": {"S": connected_before}}
        try:
            gone = self._client.delete_item(**request).get("Attributes", {})
        except ClientError as error:
            if is_condition_failure(error):
                return  # still young: kept
            raise store_error("DeleteItem", error) from error
        except AWS_ERRORS as error:
            raise store_error("DeleteItem", error) from error
        if "userId" in gone and "expiresAt" in gone:
            user_id, room = gone["userId"]["S"], gone.get("room", {}).get("S")
            self.release_slot(user_id, connection_id, room=room, expires_at=int(gone["expiresAt"]["N"]))

    def enter_room(self, member: Member) -> None:
        self._presence.enter(member)

    def _left(self, room: str, user_id: str, slot: SlotChange) -> None:
        if not slot.others_in_room:
            self.leave_room_if_empty(room, user_id, seq=slot.seq)

    def user_connections(self, user_id: str) -> tuple[list[tuple[str, str | None, int]], int | None]:
        """The user's live connections here from its slot: (connection id, room, expiresAt), and
        the slot's sequence number (None: no slot)."""
        entries, seq = self._slots.held(user_id)
        expired = set(expired_entries(entries, int(self._clock())))
        return [parse_entry(e) for e in entries if e not in expired], seq

    def leave_room_if_empty(self, room: str, user_id: str, *, seq: int) -> None:
        """The user holds no connection to the room here (as of `seq`): their last one closed,
        or the keeper's repair found none."""
        self._presence.leave(room, user_id, self._region, seq=seq)

    def connections_page(
        self, room: str, *, after: str | None, limit: int
    ) -> tuple[Sequence[str], str | None]:
        query: QueryInputTypeDef = {
            "TableName": self._table,
            "IndexName": ROOM_INDEX,
            "KeyConditionExpression": "room = :room",
            "ExpressionAttributeValues": {":room": {"S": room}},
            "Limit": limit,
        }
        if after is not None:
            # The index's position is its key and the table's: (room, connectionId).
            query["ExclusiveStartKey"] = {"room": {"S": room}, "connectionId": {"S": after}}
        try:
            page = self._client.query(**query)
        except AWS_ERRORS as error:
            raise store_error("Query", error) from error
        ids = [item["connectionId"]["S"] for item in page.get("Items", [])]
        last = page.get("LastEvaluatedKey")
        return ids, (last["connectionId"]["S"] if last else None)

    def claim_slot(
        self, user_id: str, connection_id: str, *, room: str, expires_at: int, cap: int, now: int
    ) -> SlotChange | None:
        return self._slots.claim(user_id, connection_id, room=room, expires_at=expires_at, cap=cap, now=now)

    def release_slot(self, user_id: str, connection_id: str, *, room: str | None, expires_at: int) -> None:
        """Give the slot back; the connection was the user's last to `room` here: leave it."""
        slot = self._slots.release(
            user_id, connection_id, room=room, expires_at=expires_at, now=int(self._clock())
        )
        if room is not None:
            self._left(room, user_id, slot)

    def probe(self, region: str, now: int) -> None:
        """Write then read this region's health item (it lives in the regional table)."""
        key = {"connectionId": {"S": f"health#{region}"}}
        try:
            self._client.put_item(
                TableName=self._table,
                Item={**key, "checkedAt": {"N": str(now)}, "expiresAt": {"N": str(now + 3600)}},
            )
            self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        except AWS_ERRORS as error:
            raise store_error("PutItem/GetItem", error) from error

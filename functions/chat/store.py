"""DynamoDB adapters: the only module that knows the tables' shapes and DynamoDB's errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chat.model import Message
from chat.ports import StoreError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, QueryInputTypeDef

    Item = dict[str, AttributeValueTypeDef]

ROOM_INDEX = "room-index"
USER_INDEX = "user-index"
# A message's sort key binds its writer: `<id>#<authorId>`. '#' sorts before '$', so every key of
# one id lies between `<id>#` and `<id>$`, and `sk > "<id>$"` starts after all of them.
_AUTHOR_SEPARATOR = "#"
_AFTER_ID = "$"


def _failed(operation: str, cause: Exception) -> StoreError:
    code = cause.response["Error"]["Code"] if isinstance(cause, ClientError) else type(cause).__name__
    return StoreError(operation, code)


def _old_item(error: ClientError) -> Mapping[str, Any] | None:
    """The item a failed condition found (ReturnValuesOnConditionCheckFailure=ALL_OLD)."""
    item = error.response.get("Item")
    return item if isinstance(item, dict) and item else None


def message_key(room: str, message_id: str, author_id: str) -> Item:
    return {"pk": {"S": f"room#{room}"}, "sk": {"S": f"{message_id}{_AUTHOR_SEPARATOR}{author_id}"}}


def message_to_item(message: Message, expires_at: int) -> Item:
    return {
        **message_key(message.room, message.id, message.authorId),
        "id": {"S": message.id},
        "room": {"S": message.room},
        "author": {"S": message.author},
        "authorId": {"S": message.authorId},
        "text": {"S": message.text},
        "sentAt": {"S": message.sentAt},
        "acceptedRegion": {"S": message.acceptedRegion},
        "transport": {"S": message.transport},
        "expiresAt": {"N": str(expires_at)},
    }


def message_from_item(item: Mapping[str, Any]) -> Message:
    """Read a message from a DynamoDB item or stream image (the same wire format)."""
    return Message(
        id=item["id"]["S"],
        room=item["room"]["S"],
        author=item["author"]["S"],
        authorId=item["authorId"]["S"],
        text=item["text"]["S"],
        sentAt=item["sentAt"]["S"],
        acceptedRegion=item["acceptedRegion"]["S"],
        transport=item["transport"]["S"],
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
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise _failed("PutItem", error) from error
            stored = _old_item(error)
            return (message_from_item(stored) if stored else self._get(message)), False
        except BotoCoreError as error:
            raise _failed("PutItem", error) from error
        return message, True

    def _get(self, message: Message) -> Message:
        try:
            item = self._client.get_item(
                TableName=self._table,
                Key=message_key(message.room, message.id, message.authorId),
                ConsistentRead=True,
            ).get("Item")
        except (ClientError, BotoCoreError) as error:
            raise _failed("GetItem", error) from error
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
        except (ClientError, BotoCoreError) as error:
            raise _failed("Query", error) from error
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
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return
            raise _failed("PutItem", error) from error
        except BotoCoreError as error:
            raise _failed("PutItem", error) from error


class DynamoConnectionStore:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def put_connection(
        self, connection_id: str, *, room: str, user_id: str, connected_at: str, expires_at: int
    ) -> None:
        item = connection_item(
            connection_id, room=room, user_id=user_id, connected_at=connected_at, expires_at=expires_at
        )
        try:
            self._client.put_item(TableName=self._table, Item=item)
        except (ClientError, BotoCoreError) as error:
            raise _failed("PutItem", error) from error

    def delete_connection(self, connection_id: str) -> None:
        try:
            self._client.delete_item(TableName=self._table, Key={"connectionId": {"S": connection_id}})
        except (ClientError, BotoCoreError) as error:
            raise _failed("DeleteItem", error) from error

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
        except (ClientError, BotoCoreError) as error:
            raise _failed("Query", error) from error
        ids = [item["connectionId"]["S"] for item in page.get("Items", [])]
        last = page.get("LastEvaluatedKey")
        return ids, (last["connectionId"]["S"] if last else None)

    def count_connections(self, user_id: str) -> int:
        # Select COUNT on a KEYS_ONLY index: no item crosses the wire, one read unit per 4 KB.
        query: QueryInputTypeDef = {
            "TableName": self._table,
            "IndexName": USER_INDEX,
            "KeyConditionExpression": "userId = :user",
            "ExpressionAttributeValues": {":user": {"S": user_id}},
            "Select": "COUNT",
        }
        count = 0
        try:
            while True:
                page = self._client.query(**query)
                count += page.get("Count", 0)
                if "LastEvaluatedKey" not in page:
                    return count
                query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as error:
            raise _failed("Query", error) from error

    def probe(self, region: str, now: int) -> None:
        """Write then read this region's health item (it lives in the regional table)."""
        key = {"connectionId": {"S": f"health#{region}"}}
        try:
            self._client.put_item(
                TableName=self._table,
                Item={**key, "checkedAt": {"N": str(now)}, "expiresAt": {"N": str(now + 3600)}},
            )
            self._client.get_item(TableName=self._table, Key=key, ConsistentRead=True)
        except (ClientError, BotoCoreError) as error:
            raise _failed("PutItem/GetItem", error) from error


class DynamoRateLimiter:
    """GCRA on one item per key (`limit#<key>`) in this region's connections table, holding the
    theoretical arrival time `tat` (ms) of the next event. Usually one UpdateItem per event:

    1. `tat = now + interval` if the item is new or `tat < now` (the sender is under the rate);
    2. otherwise, unless the returned `tat` is already past `now + tolerance` (refused at once),
       `tat = tat + interval` if `tat <= now + tolerance` (a burst within the tolerance).

    Both are conditional writes, so concurrent containers never admit more than the rule allows.
    The item expires (TTL) once it no longer limits anything."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def admit(self, key: str, *, now_ms: int, interval_ms: int, tolerance_ms: int) -> int | None:
        item_key: Item = {"connectionId": {"S": f"limit#{key}"}}
        expires: AttributeValueTypeDef = {"N": str((now_ms + tolerance_ms + interval_ms) // 1000 + 60)}
        tat = self._update(
            item_key,
            "SET tat = :next, expiresAt = :expires",
            "attribute_not_exists(tat) OR tat < :now",
            {":next": {"N": str(now_ms + interval_ms)}, ":now": {"N": str(now_ms)}, ":expires": expires},
        )
        if tat is None:
            return None
        if tat <= now_ms + tolerance_ms:
            tat = self._update(
                item_key,
                "SET tat = tat + :interval, expiresAt = :expires",
                "tat <= :latest",
                {
                    ":interval": {"N": str(interval_ms)},
                    ":latest": {"N": str(now_ms + tolerance_ms)},
                    ":expires": expires,
                },
            )
            if tat is None:
                return None
        return max(1, tat - (now_ms + tolerance_ms))

    def _update(
        self, key: Item, update: str, condition: str, values: dict[str, AttributeValueTypeDef]
    ) -> int | None:
        """None when the write happened, else the `tat` that failed its condition."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=key,
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise _failed("UpdateItem", error) from error
            return int((_old_item(error) or {}).get("tat", {}).get("N", "0"))
        except BotoCoreError as error:
            raise _failed("UpdateItem", error) from error
        return None

"""DynamoDB adapters: the only module that knows the tables' shapes and DynamoDB's errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chat.model import Message
from chat.ports import StoreError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ROOM_INDEX = "room-index"


def _failed(operation: str, cause: Exception) -> StoreError:
    code = cause.response["Error"]["Code"] if isinstance(cause, ClientError) else type(cause).__name__
    return StoreError(operation, code)


def message_key(room: str, message_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"room#{room}"}, "id": {"S": message_id}}


def message_to_item(message: Message, expires_at: int) -> dict[str, Any]:
    return {
        **message_key(message.room, message.id),
        "room": {"S": message.room},
        "author": {"S": message.author},
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
        text=item["text"]["S"],
        sentAt=item["sentAt"]["S"],
        acceptedRegion=item["acceptedRegion"]["S"],
        transport=item["transport"]["S"],
    )


def connection_item(
    connection_id: str, *, room: str, author: str, connected_at: str, expires_at: int
) -> dict[str, Any]:
    return {
        "connectionId": {"S": connection_id},
        "room": {"S": room},
        "author": {"S": author},
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
            stored: dict[str, Any] | None = error.response.get("Item")  # type: ignore[assignment]
            return (message_from_item(stored) if stored else self._get(message)), False
        except BotoCoreError as error:
            raise _failed("PutItem", error) from error
        return message, True

    def _get(self, message: Message) -> Message:
        try:
            item = self._client.get_item(
                TableName=self._table, Key=message_key(message.room, message.id), ConsistentRead=True
            ).get("Item")
        except (ClientError, BotoCoreError) as error:
            raise _failed("GetItem", error) from error
        return message_from_item(item) if item else message

    def list_messages(self, room: str, *, after: str | None, limit: int) -> tuple[list[Message], str | None]:
        condition = "pk = :pk"
        values: dict[str, Any] = {":pk": {"S": f"room#{room}"}}
        if after is not None:
            condition += " AND id > :after"
            values[":after"] = {"S": after}
        try:
            page = self._client.query(
                TableName=self._table,
                KeyConditionExpression=condition,
                ExpressionAttributeValues=values,
                ScanIndexForward=True,
                Limit=limit,
            )
        except (ClientError, BotoCoreError) as error:
            raise _failed("Query", error) from error
        messages = [message_from_item(item) for item in page.get("Items", [])]
        more = "LastEvaluatedKey" in page and messages
        return messages, (messages[-1].id if more else None)

    def probe(self) -> None:
        # A write whose condition can never hold: it proves the replica accepts writes without
        # storing anything, so health checks neither replicate nor wake the fan-out.
        try:
            self._client.put_item(
                TableName=self._table,
                Item=message_key("health-probe", "0" * 26),
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
        self, connection_id: str, *, room: str, author: str, connected_at: str, expires_at: int
    ) -> None:
        item = connection_item(
            connection_id, room=room, author=author, connected_at=connected_at, expires_at=expires_at
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

    def connections_in_room(self, room: str) -> Sequence[str]:
        ids: list[str] = []
        query: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": ROOM_INDEX,
            "KeyConditionExpression": "room = :room",
            "ExpressionAttributeValues": {":room": {"S": room}},
        }
        try:
            while True:
                page = self._client.query(**query)
                ids.extend(item["connectionId"]["S"] for item in page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    return ids
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

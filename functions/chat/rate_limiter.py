"""The GCRA rate limiter (per user, per guest source address, per room's guests): DynamoDB items
in this region's connections table (regional: each region counts its own). Every decision is a
conditional write, so concurrent containers never admit more than the rule allows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from chat.aws_errors import AWS_ERRORS, is_condition_failure, old_item, store_error

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    Item = dict[str, AttributeValueTypeDef]


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
            if not is_condition_failure(error):
                raise store_error("UpdateItem", error) from error
            return int((old_item(error) or {}).get("tat", {}).get("N", "0"))
        except AWS_ERRORS as error:
            raise store_error("UpdateItem", error) from error
        return None

"""The limits' DynamoDB items, in this region's connections table (regional: each region counts
its own): the per-user connection slots and the GCRA rate limiters (per user, per guest source
address, per room's guests). Every decision is one conditional write, so concurrent containers
never admit more than the rule allows."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chat.ports import StoreError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    Item = dict[str, AttributeValueTypeDef]

# Connection ids from API Gateway never hold a space; expiry first keeps an entry self-describing.
_ENTRY_SEPARATOR = " "
# A full set is re-read and its expired entries dropped at most this many times per claim.
_CLAIM_ATTEMPTS = 3


def failed(operation: str, cause: Exception) -> StoreError:
    code = cause.response["Error"]["Code"] if isinstance(cause, ClientError) else type(cause).__name__
    return StoreError(operation, code)


def old_item(error: ClientError) -> dict[str, Any] | None:
    """The item a failed condition found (ReturnValuesOnConditionCheckFailure=ALL_OLD)."""
    item = error.response.get("Item")
    return item if isinstance(item, dict) and item else None


def slot_entry(connection_id: str, expires_at: int) -> str:
    return f"{expires_at}{_ENTRY_SEPARATOR}{connection_id}"


def expired_entries(entries: Iterable[str], now: int) -> list[str]:
    """The entries of connections API Gateway has closed for sure (past their 2 h 5 min expiry),
    whether or not a `$disconnect` ever came for them."""
    return [entry for entry in entries if int(entry.split(_ENTRY_SEPARATOR, 1)[0]) <= now]


class DynamoConnectionSlots:
    """One item per user (`slots#<userId>`) holding a string set of its live connections in this
    region, each `<expiresAt> <connectionId>`. A claim is one UpdateItem:
    `ADD ids :entry` if `attribute_not_exists(ids) OR size(ids) < :cap`, so no two concurrent
    `$connect`s can both take the last slot. A refused claim reads the set from the failed
    condition (no extra read), drops the entries already past their expiry and tries again."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    @staticmethod
    def _key(user_id: str) -> Item:
        return {"connectionId": {"S": f"slots#{user_id}"}}

    def claim(self, user_id: str, connection_id: str, *, expires_at: int, cap: int, now: int) -> bool:
        entry = slot_entry(connection_id, expires_at)
        for _ in range(_CLAIM_ATTEMPTS):
            try:
                self._client.update_item(
                    TableName=self._table,
                    Key=self._key(user_id),
                    # The item outlives its newest entry a little; TTL then removes it.
                    UpdateExpression="ADD ids :entry SET expiresAt = :expires",
                    ConditionExpression="attribute_not_exists(ids) OR size(ids) < :cap",
                    ExpressionAttributeValues={
                        ":entry": {"SS": [entry]},
                        ":expires": {"N": str(expires_at + 60)},
                        ":cap": {"N": str(cap)},
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise failed("UpdateItem", error) from error
                held = (old_item(error) or {}).get("ids", {}).get("SS", [])
                expired = expired_entries(held, now)
                if not expired:
                    return False
                self._drop(user_id, expired)
                continue
            except BotoCoreError as error:
                raise failed("UpdateItem", error) from error
            return True
        return False

    def release(self, user_id: str, connection_id: str, *, expires_at: int) -> None:
        self._drop(user_id, [slot_entry(connection_id, expires_at)])

    def _drop(self, user_id: str, entries: list[str]) -> None:
        # DELETE of absent elements is a no-op, so a release is idempotent; the set's last
        # element takes the attribute with it, which the claim's condition reads as empty.
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(user_id),
                UpdateExpression="DELETE ids :entries",
                ExpressionAttributeValues={":entries": {"SS": entries}},
            )
        except (ClientError, BotoCoreError) as error:
            raise failed("UpdateItem", error) from error


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
                raise failed("UpdateItem", error) from error
            return int((old_item(error) or {}).get("tat", {}).get("N", "0"))
        except BotoCoreError as error:
            raise failed("UpdateItem", error) from error
        return None

"""The per-user connection slots: DynamoDB items in this region's connections table (regional:
each region counts its own). A claim is one conditional write, so concurrent `$connect`s never
admit more connections than the cap."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from chat.aws_errors import AWS_ERRORS, is_condition_failure, old_item, store_error

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    Item = dict[str, AttributeValueTypeDef]

# Connection ids from API Gateway never hold a space; expiry first keeps an entry self-describing.
_ENTRY_SEPARATOR = " "
# A full set is re-read and its expired entries dropped at most this many times per claim.
_CLAIM_ATTEMPTS = 3


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
                if not is_condition_failure(error):
                    raise store_error("UpdateItem", error) from error
                held = (old_item(error) or {}).get("ids", {}).get("SS", [])
                expired = expired_entries(held, now)
                if not expired:
                    return False
                self._drop(user_id, expired)
                continue
            except AWS_ERRORS as error:
                raise store_error("UpdateItem", error) from error
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
        except AWS_ERRORS as error:
            raise store_error("UpdateItem", error) from error

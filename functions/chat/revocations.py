"""Signed-out sessions, kept as items of the messages global table so that a sign-out taken in
one region reaches every region by the table's own replication, with no call between regions.

One item per signed-out session: `pk = "session#<sid>"`, `sk = "revoked"`, the user id, when, and
`expiresAt` (TTL) when the session could not be used anyway (its maximum age). A room's partition
is `room#<room>`, so no history read, heartbeat or message write ever meets these items, and the
fan-out's stream filter lets only messages through (template.yaml, FanoutStreamMapping)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from chat.ports import StoreError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef


def revocation_key(session_id: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": f"session#{session_id}"}, "sk": {"S": "revoked"}}


def _code(error: Exception) -> str:
    return error.response["Error"]["Code"] if isinstance(error, ClientError) else type(error).__name__


class DynamoSessionRevocations:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    def revoke(self, session_id: str, *, user_id: str, now: int, expires_at: int) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    **revocation_key(session_id),
                    "userId": {"S": user_id},
                    "revokedAt": {"N": str(now)},
                    "expiresAt": {"N": str(expires_at)},
                },
            )
        except (ClientError, BotoCoreError) as error:
            raise StoreError("PutItem", _code(error)) from error

    def is_revoked(self, session_id: str) -> bool:
        # Strongly consistent: the region that took the sign-out refuses the session at once.
        try:
            answer = self._client.get_item(
                TableName=self._table,
                Key=revocation_key(session_id),
                ConsistentRead=True,
                ProjectionExpression="pk",
            )
        except (ClientError, BotoCoreError) as error:
            raise StoreError("GetItem", _code(error)) from error
        return "Item" in answer

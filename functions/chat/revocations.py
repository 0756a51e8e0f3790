"""Signed-out sessions, kept as items of the messages global table so that a sign-out taken in
one region reaches every region by the table's own replication, with no call between regions.

One item per signed-out session: `pk = "session#<sid>"`, `sk = "revoked"`, the user id, when, and
`expiresAt` (TTL) when the session could not be used anyway (its maximum age). A room's partition
is `room#<room>`, so no history read, heartbeat or message write ever meets these items, and the
fan-out's stream filter lets only messages through (template.yaml, FanoutStreamMapping)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chat.aws_errors import AWS_ERRORS, error_code, store_error
from chat.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

SESSION_PREFIX = "session#"
REVOKED = "revoked"


def revocation_key(session_id: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": f"{SESSION_PREFIX}{session_id}"}, "sk": {"S": REVOKED}}


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
        except AWS_ERRORS as error:
            raise store_error("PutItem", error) from error

    def is_revoked(self, session_id: str) -> bool:
        # Strongly consistent: the region that took the sign-out refuses the session at once.
        try:
            answer = self._client.get_item(
                TableName=self._table,
                Key=revocation_key(session_id),
                ConsistentRead=True,
                ProjectionExpression="pk",
            )
        except AWS_ERRORS as error:
            raise store_error("GetItem", error) from error
        return "Item" in answer


# ---------------------------------------------------------------------- open sockets
# A sign-out's item reaches every region's messages stream (the region that took it, and every
# other once replicated), and each region's fan-out closes its own open WebSockets of that user:
# a region only ever closes connections of its own API, and none calls another region.


def signed_out_user(image: dict[str, Any] | None) -> str | None:
    """The user of a sign-out's stream image (None: the image is not a sign-out)."""
    if image is None or image.get("sk", {}).get("S") != REVOKED or "userId" not in image:
        return None
    pk = image.get("pk", {}).get("S", "")
    user_id = image["userId"].get("S")
    return user_id if pk.startswith(SESSION_PREFIX) and isinstance(user_id, str) else None


class SocketCloser:
    """Closes this region's WebSockets of a user: the connections table's user index, then
    `DELETE @connections/{id}` (API Gateway then runs $disconnect, which forgets the connection)."""

    def __init__(
        self, dynamodb: DynamoDBClient, table: str, management: ApiGatewayManagementApiClient
    ) -> None:
        self._dynamodb = dynamodb
        self._table = table
        self._management = management

    def close_user(self, user_id: str) -> int:
        """How many of the user's connections were closed (a gone one counts as closed)."""
        try:
            pages = self._dynamodb.get_paginator("query").paginate(
                TableName=self._table,
                IndexName="user-index",
                KeyConditionExpression="userId = :u",
                ExpressionAttributeValues={":u": {"S": user_id}},
            )
            connection_ids = [item["connectionId"]["S"] for page in pages for item in page.get("Items", [])]
        except AWS_ERRORS as error:
            raise store_error("Query", error) from error
        closed = 0
        for connection_id in connection_ids:
            try:
                self._management.delete_connection(ConnectionId=connection_id)
            except ClientError as error:
                if error_code(error) != "GoneException":
                    logger.warning(
                        "cannot close a signed-out connection",
                        connection_id=connection_id,
                        error=error_code(error),
                    )
                    continue
            except AWS_ERRORS as error:
                logger.warning(
                    "cannot close a signed-out connection",
                    connection_id=connection_id,
                    error=error_code(error),
                )
                continue
            closed += 1
        return closed

    def is_open(self, connection_id: str) -> bool:
        """Whether API Gateway still holds the connection (`GET @connections/{id}`; 410: gone)."""
        try:
            self._management.get_connection(ConnectionId=connection_id)
        except ClientError as error:
            if error_code(error) == "GoneException":
                return False
            raise store_error("GetConnection", error) from error
        except AWS_ERRORS as error:
            raise store_error("GetConnection", error) from error
        return True

"""The DynamoDB adapter of presence (chat/presence.py): memberships, beats and typing, as items of
the messages global table, so replication carries them to every region and every region's stream
sees them. Their keys never collide with messages' (`room#<room>`) or sign-outs' (`session#<id>`):

| item | pk | sk | attributes |
| --- | --- | --- | --- |
| membership | `presence#<room>` | `<userId>#<region>` | kind=presence, room, userId, name, region, seq,
  connectionId, since, presenceRegion |
| beat | `presence-beats` | `<region>` | kind=beat, region, beatAt, live, reconciledAt |
| typing | `typing#<userId>` | `typing` | kind=typing, room, userId, name, region, connectionId, at,
  expiresAt |

`presenceRegion` puts a membership in the sparse index `presence-region-index` (keys only), which
is how a region's keeper finds its own memberships, or a dead region's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from chat.aws_errors import AWS_ERRORS, is_condition_failure, store_error
from chat.model import Author
from chat.presence import KIND_BEAT, KIND_PRESENCE, KIND_TYPING, TYPING_TTL_SECONDS, Beat, Member

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef, QueryInputTypeDef

    Item = dict[str, AttributeValueTypeDef]

PRESENCE_REGION_INDEX = "presence-region-index"
BEATS_PK = "presence-beats"


def membership_key(room: str, user_id: str, region: str) -> Item:
    return {"pk": {"S": f"presence#{room}"}, "sk": {"S": f"{user_id}#{region}"}}


def member_from_image(image: dict[str, Any]) -> Member:
    """A membership from an item or a stream image (KeyError/ValueError if it is not one)."""
    return Member(
        room=image["room"]["S"],
        user_id=image["userId"]["S"],
        name=image["name"]["S"],
        region=image["region"]["S"],
        seq=int(image.get("seq", {}).get("N", "0")),
        connection_id=image.get("connectionId", {}).get("S", ""),
        since_ms=int(image.get("since", {}).get("N", "0")),
    )


def membership_item(member: Member) -> Item:
    return {
        **membership_key(member.room, member.user_id, member.region),
        "kind": {"S": KIND_PRESENCE},
        "room": {"S": member.room},
        "userId": {"S": member.user_id},
        "name": {"S": member.name},
        "region": {"S": member.region},
        "presenceRegion": {"S": member.region},
        "seq": {"N": str(member.seq)},
        "connectionId": {"S": member.connection_id},
        "since": {"N": str(member.since_ms)},
    }


def image_kind(image: dict[str, Any] | None) -> str | None:
    kind = (image or {}).get("kind", {})
    return kind.get("S") if isinstance(kind, dict) else None


class DynamoPresence:
    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    # ---------------------------------------------------------------- memberships

    def enter(self, member: Member) -> None:
        """Write the membership unless a later claim or release of the user's slot (a higher
        `seq`) has already written its own."""
        item = membership_item(member)
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(seq) OR seq < :seq",
                ExpressionAttributeValues={":seq": {"N": str(member.seq)}},
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise store_error("PutItem", error) from error
        except AWS_ERRORS as error:
            raise store_error("PutItem", error) from error

    def leave(self, room: str, user_id: str, region: str, *, seq: int) -> None:
        """Delete the membership if nothing later than `seq` wrote it (a newer connection's)."""
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=membership_key(room, user_id, region),
                ConditionExpression="seq < :seq",
                ExpressionAttributeValues={":seq": {"N": str(seq)}},
            )
        except ClientError as error:
            if not is_condition_failure(error):
                raise store_error("DeleteItem", error) from error
        except AWS_ERRORS as error:
            raise store_error("DeleteItem", error) from error

    def members(self, room: str, *, limit: int | None = None) -> tuple[list[Member], bool]:
        """The room's memberships in every region (this replica's copy); with `limit`, at most
        that many and whether there are more."""
        query: QueryInputTypeDef = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": f"presence#{room}"}},
        }
        found: list[Member] = []
        for item in self._query(query, limit=limit):
            if limit is not None and len(found) == limit:
                return found, True
            found.append(member_from_image(item))
        return found, False

    def region_members(self, region: str) -> list[tuple[str, str]]:
        """(room, user id) of every membership a region holds, from the sparse index."""
        query: QueryInputTypeDef = {
            "TableName": self._table,
            "IndexName": PRESENCE_REGION_INDEX,
            "KeyConditionExpression": "presenceRegion = :region",
            "ExpressionAttributeValues": {":region": {"S": region}},
        }
        found = []
        for item in self._query(query):
            room = item["pk"]["S"].removeprefix("presence#")
            user_id = item["sk"]["S"].rsplit("#", 1)[0]
            found.append((room, user_id))
        return found

    def _query(self, query: QueryInputTypeDef, *, limit: int | None = None) -> Iterator[Item]:
        start: dict[str, Any] | None = None
        while True:
            request: QueryInputTypeDef = {**query}
            if limit is not None:
                request["Limit"] = limit + 1
            if start is not None:
                request["ExclusiveStartKey"] = start
            try:
                page = self._client.query(**request)
            except AWS_ERRORS as error:
                raise store_error("Query", error) from error
            yield from page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if start is None:
                return

    # ---------------------------------------------------------------- beats

    def beat(self, beat: Beat) -> None:
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "pk": {"S": BEATS_PK},
                    "sk": {"S": beat.region},
                    "kind": {"S": KIND_BEAT},
                    "region": {"S": beat.region},
                    "beatAt": {"N": str(beat.beat_at_ms)},
                    "live": {"L": [{"S": region} for region in sorted(beat.live)]},
                    "reconciledAt": {"N": str(beat.reconciled_at_ms)},
                },
            )
        except AWS_ERRORS as error:
            raise store_error("PutItem", error) from error

    def beats(self) -> list[Beat]:
        query: QueryInputTypeDef = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": BEATS_PK}},
        }
        return [
            Beat(
                item["region"]["S"],
                int(item["beatAt"]["N"]),
                frozenset(v["S"] for v in item.get("live", {}).get("L", [])),
                int(item.get("reconciledAt", {}).get("N", "0")),
            )
            for item in self._query(query)
        ]

    # ---------------------------------------------------------------- typing

    def typing(
        self, room: str, author: Author, *, connection_id: str, region: str, now_ms: int, interval_ms: int
    ) -> bool:
        """Write the author's typing item unless one was written less than `interval_ms` ago:
        whether it was written (and so goes to every region)."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    # One item per user, whatever the room: one typing event per user per 2 s.
                    "pk": {"S": f"typing#{author.user_id}"},
                    "sk": {"S": KIND_TYPING},
                    "kind": {"S": KIND_TYPING},
                    "room": {"S": room},
                    "userId": {"S": author.user_id},
                    "name": {"S": author.name},
                    "region": {"S": region},
                    "connectionId": {"S": connection_id},
                    "at": {"N": str(now_ms)},
                    "expiresAt": {"N": str(now_ms // 1000 + TYPING_TTL_SECONDS)},
                },
                ConditionExpression="attribute_not_exists(#at) OR #at <= :cutoff",
                ExpressionAttributeNames={"#at": "at"},
                ExpressionAttributeValues={":cutoff": {"N": str(now_ms - interval_ms)}},
            )
        except ClientError as error:
            if is_condition_failure(error):
                return False
            raise store_error("PutItem", error) from error
        except AWS_ERRORS as error:
            raise store_error("PutItem", error) from error
        return True

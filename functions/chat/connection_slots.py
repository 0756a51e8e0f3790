"""The per-user connection slots: DynamoDB items in this region's connections table (regional:
each region counts its own). A claim is one conditional write, so concurrent `$connect`s never
admit more connections than the cap."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple

from botocore.exceptions import ClientError

from chat.aws_errors import AWS_ERRORS, is_condition_failure, old_item, store_error
from chat.ports import SlotChange

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    Item = dict[str, AttributeValueTypeDef]

# Connection ids from API Gateway never hold a space; expiry first keeps an entry self-describing.
_ENTRY_SEPARATOR = " "
# A full set is re-read and its expired entries dropped at most this many times per claim.
_CLAIM_ATTEMPTS = 3
_NEXT_SEQ = "seq = if_not_exists(seq, :clock) + :one"


def slot_entry(connection_id: str, expires_at: int, room: str) -> str:
    return _ENTRY_SEPARATOR.join((str(expires_at), connection_id, room))


def _legacy_entry(connection_id: str, expires_at: int) -> str:
    """An entry written before entries named their room (released as well: it may still be held)."""
    return f"{expires_at}{_ENTRY_SEPARATOR}{connection_id}"


class SlotEntry(NamedTuple):
    connection_id: str
    room: str | None  # None: an entry written before entries named their room
    expires_at: int


def parse_entry(entry: str) -> SlotEntry:
    expires_at, connection_id, *room = entry.split(_ENTRY_SEPARATOR)
    return SlotEntry(connection_id, room[0] if room else None, int(expires_at))


def _others_in_room(entries: Iterable[str], room: str, *, besides: str, now: int) -> bool:
    live = set(entries) - set(expired_entries(entries, now))
    return any(parse_entry(entry).room == room for entry in live if entry != besides)


def expired_entries(entries: Iterable[str], now: int) -> list[str]:
    """The entries of connections API Gateway has closed for sure (past their 2 h 5 min expiry),
    whether or not a `$disconnect` ever came for them."""
    return [entry for entry in entries if parse_entry(entry).expires_at <= now]


class DynamoConnectionSlots:
    """One item per user (`slots#<userId>`) holding a string set of its live connections in this
    region, each `<expiresAt> <connectionId> <room>`, and a sequence number `seq` that every
    claim and release advances (it orders their membership writes: chat/presence.py). A claim is
    one UpdateItem: `ADD ids :entry` if `attribute_not_exists(ids) OR size(ids) < :cap`, so no two
    concurrent `$connect`s can both take the last slot. A refused claim reads the set from the
    failed condition (no extra read), drops the entries already past their expiry and tries
    again."""

    def __init__(self, client: DynamoDBClient, table: str) -> None:
        self._client = client
        self._table = table

    @staticmethod
    def _key(user_id: str) -> Item:
        return {"connectionId": {"S": f"slots#{user_id}"}}

    def claim(
        self, user_id: str, connection_id: str, *, room: str, expires_at: int, cap: int, now: int
    ) -> SlotChange | None:
        """The slot, or None when the user already holds `cap` live connections here."""
        entry = slot_entry(connection_id, expires_at, room)
        for _ in range(_CLAIM_ATTEMPTS):
            try:
                new = self._client.update_item(
                    TableName=self._table,
                    Key=self._key(user_id),
                    # The item outlives its newest entry a little; TTL then removes it. The sequence
                    # number starts from the clock, so a slot item made again after its TTL never
                    # numbers below the memberships its predecessor wrote.
                    UpdateExpression=f"ADD ids :entry SET expiresAt = :expires, {_NEXT_SEQ}",
                    ConditionExpression="attribute_not_exists(ids) OR size(ids) < :cap",
                    ExpressionAttributeValues={
                        ":entry": {"SS": [entry]},
                        ":expires": {"N": str(expires_at + 60)},
                        ":cap": {"N": str(cap)},
                        ":clock": {"N": str(now * 1000)},
                        ":one": {"N": "1"},
                    },
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )["Attributes"]
            except ClientError as error:
                if not is_condition_failure(error):
                    raise store_error("UpdateItem", error) from error
                held = (old_item(error) or {}).get("ids", {}).get("SS", [])
                expired = expired_entries(held, now)
                if not expired:
                    return None
                self._drop(user_id, expired, now=now)
                continue
            except AWS_ERRORS as error:
                raise store_error("UpdateItem", error) from error
            held = new.get("ids", {}).get("SS", [])
            return SlotChange(_others_in_room(held, room, besides=entry, now=now), int(new["seq"]["N"]))
        return None

    def release(
        self, user_id: str, connection_id: str, *, room: str | None, expires_at: int, now: int
    ) -> SlotChange:
        entries = [_legacy_entry(connection_id, expires_at)]
        if room is not None:
            entries.append(slot_entry(connection_id, expires_at, room))
        new = self._drop(user_id, entries, now=now)
        held = new.get("ids", {}).get("SS", [])
        return SlotChange(
            room is not None and _others_in_room(held, room, besides="", now=now), int(new["seq"]["N"])
        )

    def held(self, user_id: str) -> tuple[list[str], int | None]:
        """The user's entries here and the slot's sequence number (None: no slot item)."""
        try:
            item = self._client.get_item(TableName=self._table, Key=self._key(user_id), ConsistentRead=True)
        except AWS_ERRORS as error:
            raise store_error("GetItem", error) from error
        found = item.get("Item")
        if not found:
            return [], None
        return list(found.get("ids", {}).get("SS", [])), int(found.get("seq", {}).get("N", "0"))

    def _drop(self, user_id: str, entries: list[str], *, now: int) -> Item:
        # DELETE of absent elements is a no-op, so a release is idempotent; the set's last
        # element takes the attribute with it, which the claim's condition reads as empty.
        try:
            return self._client.update_item(
                TableName=self._table,
                Key=self._key(user_id),
                UpdateExpression=(
                    f"DELETE ids :entries SET expiresAt = if_not_exists(expiresAt, :expires), {_NEXT_SEQ}"
                ),
                ExpressionAttributeValues={
                    ":entries": {"SS": entries},
                    ":expires": {"N": str(now + 60)},
                    ":clock": {"N": str(now * 1000)},
                    ":one": {"N": "1"},
                },
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except AWS_ERRORS as error:
            raise store_error("UpdateItem", error) from error

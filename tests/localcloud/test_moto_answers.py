"""The local stack's moto answers the item operations with their results as plain JSON instead of
walking them through the service model (the drill's load spent most of moto's time there). What
boto3 reads from those answers must not change: for any item, every operation the stack makes
answers exactly what moto's own serializer answers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st
from moto import mock_aws
from moto.core.responses import ActionResult

from localcloud.aws.server import prepare_moto

TABLE = "messages"
KEY = {"pk": {"S": "room#lobby"}, "sk": {"S": "0001"}}

names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=8)
numbers = st.integers(-(10**12), 10**12).map(str)
scalars = st.one_of(
    st.builds(lambda s: {"S": s}, st.text(max_size=20)),
    st.builds(lambda n: {"N": n}, numbers),
    st.builds(lambda b: {"BOOL": b}, st.booleans()),
    st.just({"NULL": True}),
    st.builds(lambda b: {"B": b}, st.binary(min_size=1, max_size=8)),
    st.builds(lambda s: {"SS": sorted(s)}, st.sets(st.text(max_size=5), min_size=1, max_size=3)),
    st.builds(lambda s: {"NS": sorted(s)}, st.sets(numbers, min_size=1, max_size=3)),
    st.builds(
        lambda s: {"BS": sorted(s)}, st.sets(st.binary(min_size=1, max_size=4), min_size=1, max_size=2)
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.builds(lambda v: {"L": v}, st.lists(inner, max_size=3)),
        st.builds(lambda v: {"M": v}, st.dictionaries(names, inner, max_size=3)),
    ),
    max_leaves=6,
)
attributes = st.dictionaries(names.filter(lambda n: n not in ("pk", "sk")), values, max_size=4)


Both = Callable[[Callable[[], Any], Callable[[], Any]], tuple[Any, Any]]


@pytest.fixture(scope="module")
def aws() -> Iterator[tuple[Any, Any]]:
    prepare_moto()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-2")
        dynamodb.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        yield dynamodb, boto3.client("dynamodbstreams", region_name="eu-west-2")


def both(call: Callable[[], Any], before: Callable[[], Any]) -> tuple[Any, Any]:
    """The call's answer as the stack's moto gives it, then as moto's own serializer gives it,
    each made after `before` (which sets the table back)."""
    plain = ActionResult.execute_result
    before()
    fast = call()
    ActionResult.execute_result = plain.moto  # type: ignore[attr-defined, method-assign]
    try:
        before()
        reference = call()
    finally:
        ActionResult.execute_result = plain  # type: ignore[method-assign]
    return _without_metadata(fast), _without_metadata(reference)


def _without_metadata(answer: Any) -> Any:
    """The answer without what differs on every call: request ids, a stream's next iterator."""
    return {k: v for k, v in answer.items() if k not in ("ResponseMetadata", "NextShardIterator")}


@given(item=attributes, update=values)
def test_every_item_operation_answers_what_motos_serializer_answers(
    aws: tuple[Any, Any], item: dict[str, Any], update: Any
) -> None:
    dynamodb, streams = aws
    arn = dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="LATEST")

    def stored() -> None:
        dynamodb.put_item(TableName=TABLE, Item=KEY | item)

    writes: list[Callable[[], Any]] = [
        lambda: dynamodb.put_item(TableName=TABLE, Item=KEY | item, ReturnValues="ALL_OLD"),
        lambda: dynamodb.update_item(
            TableName=TABLE,
            Key=KEY,
            UpdateExpression="SET #v = :v",
            ExpressionAttributeNames={"#v": "value"},
            ExpressionAttributeValues={":v": update},
            ReturnValues="ALL_NEW",
            ReturnConsumedCapacity="TOTAL",
        ),
        lambda: dynamodb.delete_item(TableName=TABLE, Key=KEY, ReturnValues="ALL_OLD"),
        lambda: dynamodb.batch_write_item(RequestItems={TABLE: [{"PutRequest": {"Item": KEY | item}}]}),
    ]
    for write in writes:
        fast, reference = both(write, stored)
        assert fast == reference

    reads: list[Callable[[], Any]] = [
        lambda: dynamodb.get_item(TableName=TABLE, Key=KEY, ConsistentRead=True),
        lambda: dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "nobody"}, "sk": {"S": "0"}}),
        lambda: dynamodb.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk AND sk > :after",
            ExpressionAttributeValues={":pk": KEY["pk"], ":after": {"S": "0000"}},
            Limit=1,
            ReturnConsumedCapacity="TOTAL",
        ),
        lambda: dynamodb.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": KEY["pk"]},
            Select="COUNT",
        ),
        lambda: dynamodb.scan(TableName=TABLE),
        lambda: dynamodb.batch_get_item(RequestItems={TABLE: {"Keys": [KEY]}}),
    ]
    stored()
    for read in reads:
        fast, reference = both(read, lambda: None)
        assert fast == reference
    fast, reference = both(lambda: streams.get_records(ShardIterator=iterator["ShardIterator"]), lambda: None)
    assert fast == reference
    # what this example wrote was read back from the stream, with its times
    assert fast["Records"]
    assert all("ApproximateCreationDateTime" in r["dynamodb"] for r in fast["Records"])

"""The tables have the keys, indexes, streams and TTLs that the handlers and local stack rely on."""

from __future__ import annotations

from typing import Any

from tests.template.cfn import Context, Template


def _keys(properties: dict[str, Any]) -> dict[str, str]:
    return {key["AttributeName"]: key["KeyType"] for key in properties["KeySchema"]}


def test_given_the_connections_table_then_indexes_find_a_rooms_and_a_users_connections(
    template: Template,
) -> None:
    properties = template["Resources"]["ConnectionsTable"]["Properties"]
    assert template["Resources"]["ConnectionsTable"]["Type"] == "AWS::DynamoDB::Table"
    assert _keys(properties) == {"connectionId": "HASH"}
    indexes = {index["IndexName"]: index for index in properties["GlobalSecondaryIndexes"]}
    assert sorted(indexes) == ["room-index", "user-index"]
    assert _keys(indexes["room-index"]) == {"room": "HASH"}
    assert _keys(indexes["user-index"]) == {"userId": "HASH"}
    assert {index["Projection"]["ProjectionType"] for index in indexes.values()} == {"KEYS_ONLY"}
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert properties["BillingMode"] == "PAY_PER_REQUEST"


def test_given_the_messages_table_then_the_writer_is_part_of_the_key_and_every_insert_is_streamed(
    template: Template,
) -> None:
    properties = template["Resources"]["MessagesTable"]["Properties"]
    assert _keys(properties) == {"pk": "HASH", "sk": "RANGE"}  # sk = "<id>#<authorId>"
    assert properties["TableName"] == {"Ref": "MessagesTableName"}
    assert properties["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    assert properties["BillingMode"] == "PAY_PER_REQUEST"


def test_given_both_regions_when_deployed_then_exactly_one_global_table_exists_in_the_primary(
    primary_stack: Context, secondary_stack: Context
) -> None:
    def global_tables(stack: Context) -> list[str]:
        return [
            name
            for name, resource in stack.resources().items()
            if resource["Type"] == "AWS::DynamoDB::GlobalTable"
        ]

    assert global_tables(primary_stack) == ["MessagesTable"]
    assert global_tables(secondary_stack) == []


def test_given_the_primary_stack_then_its_global_table_has_a_replica_in_both_regions(
    primary_stack: Context,
) -> None:
    replicas = primary_stack.resources()["MessagesTable"]["Properties"]["Replicas"]
    regions = [primary_stack.resolve(replica["Region"]) for replica in replicas]
    assert sorted(regions) == ["eu-west-2", "us-east-1"]


def test_given_the_secondary_stack_then_it_finds_its_replica_stream_itself(
    secondary_stack: Context, primary_stack: Context
) -> None:
    created = secondary_stack.resources()
    lookups = [name for name, r in created.items() if r["Type"].startswith("Custom::")]
    assert lookups == ["MessagesReplicaStream"]
    assert "MessagesReplicaStream" not in primary_stack.resources()
    mapping = created["FanoutStreamMapping"]["Properties"]
    assert secondary_stack.resolve(mapping["EventSourceArn"]) == {
        "Fn::GetAtt": ["MessagesReplicaStream", "StreamArn"]
    }
    assert primary_stack.resolve(mapping["EventSourceArn"]) == {"Fn::GetAtt": ["MessagesTable", "StreamArn"]}


def test_given_either_region_then_replication_latency_is_watched_towards_the_other_region(
    primary_stack: Context, secondary_stack: Context
) -> None:
    for stack, other in ((primary_stack, "eu-west-2"), (secondary_stack, "us-east-1")):
        alarm = stack.resources()["ReplicationLatencyAlarm"]["Properties"]
        dimensions = {d["Name"]: stack.resolve(d["Value"]) for d in alarm["Dimensions"]}
        assert alarm["MetricName"] == "ReplicationLatency"
        assert dimensions == {"TableName": "resilient-chat-messages", "ReceivingRegion": other}


def test_given_the_messages_table_then_every_replica_has_point_in_time_recovery_and_deletion_protection(
    primary_stack: Context,
) -> None:
    replicas = primary_stack.resources()["MessagesTable"]["Properties"]["Replicas"]
    assert len(replicas) == 2
    for replica in replicas:
        region = primary_stack.resolve(replica["Region"])
        # The default, and every deploy after the primary's first create (test_first_deploy.py).
        assert primary_stack.resolve(replica["DeletionProtectionEnabled"]) is True, region
        assert replica.get("PointInTimeRecoverySpecification") == {"PointInTimeRecoveryEnabled": True}, region


def test_given_the_primary_stack_then_it_makes_the_session_key_with_a_replica_in_the_other_region(
    template: Template, primary_stack: Context, secondary_stack: Context
) -> None:
    secret = template["Resources"]["SessionSigningKey"]
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert secret["Condition"] == "IsPrimary"
    assert "SessionSigningKey" in primary_stack.resources()
    assert "SessionSigningKey" not in secondary_stack.resources()
    properties = secret["Properties"]
    assert properties["GenerateSecretString"]["GenerateStringKey"] == "secret"
    assert properties["GenerateSecretString"]["PasswordLength"] >= 32
    (replica,) = primary_stack.resources()["SessionSigningKey"]["Properties"]["ReplicaRegions"]
    assert primary_stack.resolve(replica["Region"]) == "eu-west-2"
    # Every function reads it by the same name, which is the replica's name in the other region.
    name = template["Globals"]["Function"]["Environment"]["Variables"]["SESSION_SECRET_ID"]
    assert name == properties["Name"]

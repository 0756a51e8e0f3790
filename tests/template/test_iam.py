"""Each function may do only what it uses, on the resources it uses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.template.cfn import Template, resources_of_type

MESSAGES_TABLE_ARN = (
    "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/${MessagesTableName}"
)
CONNECTIONS_TABLE_ARN = {"Fn::GetAtt": ["ConnectionsTable", "Arn"]}
USER_INDEX_ARN = "${ConnectionsTable.Arn}/index/user-index"
# This region's replica of the session secret, by name (Secrets Manager adds 6 random characters).
SESSION_SECRET_ARN = (
    "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}"
    ":secret:${AWS::StackName}/session-keys-??????"
)

# (action, resource) pairs each function needs, and nothing else.
EXPECTED_GRANTS: dict[str, set[tuple[str, str]]] = {
    # UpdateItem: the user's connection slots (`slots#<userId>`), taken on connect, given back on
    # close; the messages table: the user's membership of the room (chat/presence.py), written by
    # their first connection to it and deleted by their last (or by a connection refused after it)
    "ConnectFunction": {
        ("dynamodb:PutItem", "ConnectionsTable"),
        ("dynamodb:UpdateItem", "ConnectionsTable"),
        ("dynamodb:DeleteItem", "ConnectionsTable"),
        ("dynamodb:PutItem", MESSAGES_TABLE_ARN),
        ("dynamodb:DeleteItem", MESSAGES_TABLE_ARN),
    },
    "DisconnectFunction": {
        ("dynamodb:DeleteItem", "ConnectionsTable"),
        ("dynamodb:UpdateItem", "ConnectionsTable"),
        ("dynamodb:DeleteItem", MESSAGES_TABLE_ARN),
    },
    "SendMessageFunction": {
        ("dynamodb:PutItem", MESSAGES_TABLE_ARN),
        ("dynamodb:GetItem", MESSAGES_TABLE_ARN),
        ("dynamodb:Query", MESSAGES_TABLE_ARN),  # a guest's look-alike names among the room's speakers
        ("dynamodb:UpdateItem", MESSAGES_TABLE_ARN),  # an edit or delete of the sender's own message
        ("dynamodb:UpdateItem", "ConnectionsTable"),  # the sender's rate limiter item
    },
    "DefaultRouteFunction": set(),
    "AuthorizerFunction": {
        ("secretsmanager:GetSecretValue", SESSION_SECRET_ARN),
        ("dynamodb:GetItem", MESSAGES_TABLE_ARN),  # whether the session was signed out
    },
    "HttpApiFunction": {
        ("dynamodb:Query", MESSAGES_TABLE_ARN),
        ("dynamodb:GetItem", MESSAGES_TABLE_ARN),
        ("dynamodb:PutItem", MESSAGES_TABLE_ARN),
        ("dynamodb:UpdateItem", MESSAGES_TABLE_ARN),  # an edit or delete of the caller's own message
        ("dynamodb:PutItem", "ConnectionsTable"),
        ("dynamodb:GetItem", "ConnectionsTable"),
        ("dynamodb:UpdateItem", "ConnectionsTable"),
        ("secretsmanager:GetSecretValue", SESSION_SECRET_ARN),
    },
}
PAGE_QUEUE = "FanoutPageQueue.Arn"
# The large rooms' worker: its event source mapping polls with its role; it hands failed connections
# back to the page queue, removes gone connections and posts to this API's connections.
EXPECTED_GRANTS["FanoutWorkerFunction"] = {
    ("sqs:ReceiveMessage", PAGE_QUEUE),
    ("sqs:DeleteMessage", PAGE_QUEUE),
    ("sqs:GetQueueAttributes", PAGE_QUEUE),
    ("sqs:SendMessage", PAGE_QUEUE),
    ("dynamodb:DeleteItem", "ConnectionsTable"),
    ("dynamodb:UpdateItem", "ConnectionsTable"),  # a gone connection's slot
    ("dynamodb:DeleteItem", MESSAGES_TABLE_ARN),  # and its membership, if it was the user's last
    (
        "execute-api:ManageConnections",
        "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/${StageName}/POST/@connections/*",
    ),
}
MANAGEMENT = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/${StageName}"
# The presence keeper (chat/presence_keeper.py): beats, reads memberships by room and by region,
# deletes the ones no connection holds; asks API Gateway whether a connection is open, forgets
# gone ones (their slots), pushes presence frames (large rooms through the page queue).
EXPECTED_GRANTS["PresenceKeeperFunction"] = {
    ("dynamodb:Query", MESSAGES_TABLE_ARN),
    ("dynamodb:Query", f"{MESSAGES_TABLE_ARN}/index/presence-region-index"),
    ("dynamodb:PutItem", MESSAGES_TABLE_ARN),
    ("dynamodb:DeleteItem", MESSAGES_TABLE_ARN),
    ("dynamodb:GetItem", "ConnectionsTable"),
    ("dynamodb:DeleteItem", "ConnectionsTable"),
    ("dynamodb:UpdateItem", "ConnectionsTable"),
    ("dynamodb:Query", "${ConnectionsTable.Arn}/index/room-index"),
    ("execute-api:ManageConnections", f"{MANAGEMENT}/GET/@connections/*"),
    ("execute-api:ManageConnections", f"{MANAGEMENT}/POST/@connections/*"),
    ("sqs:SendMessage", PAGE_QUEUE),
}
DATA_AND_MANAGEMENT_PREFIXES = ("dynamodb:", "execute-api:", "sqs:", "secretsmanager:")
# Actions IAM cannot scope (no resource type): each alone in its statement, on "*" (docs/deploy.md).
UNSCOPABLE_ACTIONS = {"FanoutFunction": ["dynamodb:ListStreams"]}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _resource_label(resource: Any) -> str:
    if resource == CONNECTIONS_TABLE_ARN:
        return "ConnectionsTable"
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        return str(resource["Fn::Sub"])
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        return ".".join(resource["Fn::GetAtt"])
    return str(resource)


def _statements(template: Template) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every inline IAM statement: SAM function policies and plain IAM roles."""
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            for policy in resource["Properties"].get("Policies", []):
                # Inline statements only: SAM policy templates and managed policies grant too much.
                assert isinstance(policy, dict), f"{name}: {policy}"
                assert "Statement" in policy, f"{name}: {policy}"
                for statement in policy["Statement"]:
                    yield name, statement
        elif resource["Type"] == "AWS::IAM::Role":
            for policy in resource["Properties"].get("Policies", []):
                for statement in policy["PolicyDocument"]["Statement"]:
                    yield name, statement


def _grants(function: dict[str, Any]) -> set[tuple[str, str]]:
    grants: set[tuple[str, str]] = set()
    for policy in function["Properties"].get("Policies", []):
        for statement in policy["Statement"]:
            for action in _as_list(statement["Action"]):
                for resource in _as_list(statement["Resource"]):
                    grants.add((action, _resource_label(resource)))
    return grants


@pytest.mark.parametrize("function_name", sorted(EXPECTED_GRANTS))
def test_given_a_handler_then_its_role_grants_exactly_the_table_calls_it_makes(
    functions: dict[str, dict[str, Any]], function_name: str
) -> None:
    assert _grants(functions[function_name]) == EXPECTED_GRANTS[function_name]


def test_given_any_role_then_no_data_or_management_action_applies_to_every_resource(
    template: Template,
) -> None:
    for owner, statement in _statements(template):
        assert statement["Effect"] == "Allow", owner
        actions = _as_list(statement["Action"])
        for action in actions:
            assert "*" not in action, f"{owner}: wildcard action {action}"
        if actions == UNSCOPABLE_ACTIONS.get(owner):
            continue
        if any(action.startswith(DATA_AND_MANAGEMENT_PREFIXES) for action in actions):
            for resource in _as_list(statement["Resource"]):
                assert resource != "*", f"{owner}: {actions} on every resource"
                text = _resource_label(resource)
                assert not text.endswith(":*"), f"{owner}: {text}"
                assert "table/*" not in text, f"{owner}: {text}"


def test_given_the_fanout_then_it_may_post_only_to_this_apis_own_connections(
    functions: dict[str, dict[str, Any]],
) -> None:
    grants = _grants(functions["FanoutFunction"])
    manage = {resource for action, resource in grants if action == "execute-api:ManageConnections"}
    prefix = (
        "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${WebSocketApi}/${StageName}/"
    )
    # POST: frames; DELETE: closing a signed-out user's connections
    assert manage == {f"{prefix}POST/@connections/*", f"{prefix}DELETE/@connections/*"}


def test_given_the_fanout_then_it_reads_only_the_messages_stream_and_its_rooms_connections(
    functions: dict[str, dict[str, Any]],
) -> None:
    grants = _grants(functions["FanoutFunction"])
    stream = f"{MESSAGES_TABLE_ARN}/stream/*"
    assert {
        ("dynamodb:Query", "${ConnectionsTable.Arn}/index/room-index"),
        ("dynamodb:DeleteItem", "ConnectionsTable"),
        ("dynamodb:GetRecords", stream),
        ("dynamodb:GetShardIterator", stream),
        ("dynamodb:DescribeStream", stream),
    } <= grants
    # ListStreams names no resource in IAM: granted on a stream ARN it would allow nothing.
    assert {r for a, r in grants if a == "dynamodb:ListStreams"} == {"*"}
    dynamodb = {(a, r) for a, r in grants if a.startswith("dynamodb:") and a != "dynamodb:ListStreams"}
    # user-index: a signed-out user's connections in this region, which it closes
    allowed = {
        "${ConnectionsTable.Arn}/index/room-index",
        USER_INDEX_ARN,
        "ConnectionsTable",
        stream,
        MESSAGES_TABLE_ARN,
    }
    assert {resource for _, resource in dynamodb} <= allowed
    # the messages table: the repairs of edits and deletes (chat/change_stream.py); presence
    # (chat/presence_stream.py) reads a room's memberships and deletes a gone connection's
    assert {a for a, r in dynamodb if r == MESSAGES_TABLE_ARN} == {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:Query",
        "dynamodb:DeleteItem",
    }
    # DeleteItem: gone connections; UpdateItem: the slots they held
    assert not {a for a, r in dynamodb if r == "ConnectionsTable"} - {
        "dynamodb:DeleteItem",
        "dynamodb:UpdateItem",
    }


def test_given_the_fanout_then_it_may_send_only_to_its_page_queue_and_its_failure_queue(
    functions: dict[str, dict[str, Any]],
) -> None:
    sqs = {(a, r) for a, r in _grants(functions["FanoutFunction"]) if a.startswith("sqs:")}
    assert sqs == {("sqs:SendMessage", PAGE_QUEUE), ("sqs:SendMessage", "FanoutFailureQueue.Arn")}


def test_given_the_stream_mapping_then_no_broad_managed_policy_is_attached_by_a_sam_event(
    functions: dict[str, dict[str, Any]],
) -> None:
    for name, function in functions.items():
        for event in function["Properties"].get("Events", {}).values():
            # SAM's DynamoDB/Kinesis events attach AWSLambdaDynamoDBExecutionRole (streams on "*").
            assert event["Type"] not in {"DynamoDB", "Kinesis"}, name


def test_given_the_replica_lookup_then_it_may_only_describe_the_messages_table(
    template: Template,
) -> None:
    role = resources_of_type(template, "AWS::IAM::Role")["ReplicaStreamLookupRole"]
    statements = [
        statement
        for policy in role["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        if any(a.startswith("dynamodb:") for a in _as_list(statement["Action"]))
    ]
    assert [(s["Action"], _resource_label(s["Resource"])) for s in statements] == [
        ("dynamodb:DescribeTable", MESSAGES_TABLE_ARN)
    ]


def test_given_the_heartbeats_integration_then_api_gateway_may_only_read_message_ids_of_this_replica(
    template: Template,
) -> None:
    role = template["Resources"]["PingIntegrationRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"
    (policy,) = role["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "dynamodb:Query"
    assert statement["Resource"] == {"Fn::Sub": MESSAGES_TABLE_ARN}  # not its indexes, not another region's
    # named attributes only, and only the key attributes (which IAM needs named) and the id
    assert statement["Condition"] == {
        "ForAllValues:StringEquals": {"dynamodb:Attributes": ["pk", "sk", "id"]},
        "StringEquals": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
    }
    assert "ManagedPolicyArns" not in role

"""What a deployer reads back: the stack outputs, the per-region config envs and the alarms."""

from __future__ import annotations

from typing import Any

from tests.template.cfn import Template, resources_of_type, stack_in

REGIONS = ("us-east-1", "eu-west-2")


def test_given_a_deployed_stack_then_its_outputs_name_every_endpoint_and_table(
    template: Template,
) -> None:
    outputs = template["Outputs"]
    assert {
        "HttpApiUrl",
        "WebSocketUrl",
        "WebSocketManagementEndpoint",
        "MessagesTableName",
        "ConnectionsTableName",
        "HealthCheckId",
        "HttpCustomDomainUrl",
        "WebSocketCustomDomainUrl",
    } <= outputs.keys()
    assert outputs["HttpApiUrl"]["Value"] == {
        "Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
    }
    assert outputs["WebSocketUrl"]["Value"]["Fn::Sub"].startswith("wss://${WebSocketApi}.")
    assert outputs["HealthCheckId"]["Value"] == {"Ref": "HealthCheck"}


def test_given_samconfig_then_each_region_has_a_config_env_that_names_it(
    samconfig: dict[str, Any],
) -> None:
    assert "default" in samconfig
    stack_names = set()
    for region in REGIONS:
        env = samconfig[region]
        assert env["deploy"]["parameters"]["region"] == region
        assert env["global"]["parameters"]["region"] == region
        assert env["delete"]["parameters"]["region"] == region
        overrides = env["deploy"]["parameters"]["parameter_overrides"]
        assert 'PrimaryRegion="us-east-1"' in overrides
        stack_names.add(env["global"]["parameters"]["stack_name"])
    assert len(stack_names) == 1, "both regions deploy the same stack"


def test_given_samconfig_then_deploys_never_stop_for_a_prompt(samconfig: dict[str, Any]) -> None:
    for region in REGIONS:
        deploy = samconfig[region]["deploy"]["parameters"]
        assert deploy["confirm_changeset"] is False
        assert deploy["fail_on_empty_changeset"] is False
        assert "CAPABILITY_IAM" in deploy["capabilities"]


def test_given_either_region_then_errors_5xx_and_replication_are_alarmed_and_on_a_dashboard(
    template: Template,
) -> None:
    for region in REGIONS:
        created = stack_in(template, region).resources()
        alarms = {name for name, r in created.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
        assert {
            "FunctionErrorsAlarm",
            "HttpApi5xxAlarm",
            "WebSocketExecutionErrorAlarm",
            "ReplicationLatencyAlarm",
        } <= alarms, region
        assert any(r["Type"] == "AWS::CloudWatch::Dashboard" for r in created.values())


def test_given_a_domain_then_the_health_check_alarm_lives_where_route53_publishes_metrics(
    template: Template,
) -> None:
    overrides = {"DomainName": "chat.example.com", "HostedZoneId": "Z0123456789ABC"}
    assert "HealthCheckAlarm" in stack_in(template, "us-east-1", overrides).resources()
    assert "HealthCheckAlarm" not in stack_in(template, "eu-west-2", overrides).resources()
    (alarm,) = (
        a for n, a in resources_of_type(template, "AWS::CloudWatch::Alarm").items() if n == "HealthCheckAlarm"
    )
    assert alarm["Properties"]["Namespace"] == "AWS/Route53"


def test_given_the_function_errors_alarm_then_it_sums_every_chat_function_but_the_authorizer(
    template: Template, functions: dict[str, dict[str, Any]]
) -> None:
    metrics = template["Resources"]["FunctionErrorsAlarm"]["Properties"]["Metrics"]
    watched = {
        dimension["Value"]["Ref"]
        for metric in metrics
        if "MetricStat" in metric
        for dimension in metric["MetricStat"]["Metric"]["Dimensions"]
    }
    # The authorizer refuses a bad token by raising "Unauthorized" (API Gateway's contract for a
    # 401): each bad token is a Lambda error of that function, not a fault.
    assert watched == set(functions) - {"AuthorizerFunction"}


def test_given_the_alarm_topic_then_cloudwatch_may_use_its_key_so_alarms_really_notify(
    template: Template,
) -> None:
    resources = template["Resources"]
    key_ref = resources["AlarmTopic"]["Properties"].get("KmsMasterKeyId")
    if key_ref is None:  # an unencrypted topic: CloudWatch can always publish to it
        return
    # The AWS-managed key (alias/aws/sns) cannot grant CloudWatch: only a key of this stack can.
    assert isinstance(key_ref, dict), key_ref
    key = resources[key_ref["Ref"]]
    assert key["Type"] == "AWS::KMS::Key"
    cloudwatch = ("cloudwatch.amazonaws.com", ["cloudwatch.amazonaws.com"])
    granted = {
        action
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
        if statement["Effect"] == "Allow" and statement["Principal"].get("Service") in cloudwatch
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= granted
    assert key["Properties"]["EnableKeyRotation"] is True


def test_given_any_alarm_then_it_notifies_the_alarm_topic(template: Template) -> None:
    for name, alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], name

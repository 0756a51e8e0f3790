"""Every WebSocket and HTTP route reaches a function, and two-way routes answer the sender."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.template.cfn import Template, refs_in, resources_of_type

WEBSOCKET_ROUTES = {
    "$connect": "ConnectFunction",
    "$disconnect": "DisconnectFunction",
    "sendMessage": "SendMessageFunction",
    "editMessage": "SendMessageFunction",
    "deleteMessage": "SendMessageFunction",
    "typing": "SendMessageFunction",  # never acknowledged, but a bad frame gets an error frame
    "$default": "DefaultRouteFunction",
}
HTTP_ROUTES = {
    ("GET", "/health"),
    ("POST", "/session"),
    ("DELETE", "/session"),
    ("GET", "/rooms/{room}/messages"),
    ("POST", "/rooms/{room}/messages"),
    ("PATCH", "/rooms/{room}/messages/{id}"),
    ("DELETE", "/rooms/{room}/messages/{id}"),
    ("GET", "/rooms/{room}/presence"),
}


def _routes_by_key(template: Template) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        route["Properties"]["RouteKey"]: (name, route)
        for name, route in resources_of_type(template, "AWS::ApiGatewayV2::Route").items()
    }


def _function_behind(template: Template, route: dict[str, Any]) -> str:
    target = route["Properties"]["Target"]["Fn::Sub"]
    assert target.startswith("integrations/${"), target
    integration_name = target.removeprefix("integrations/${").removesuffix("}")
    integration = template["Resources"][integration_name]
    assert integration["Type"] == "AWS::ApiGatewayV2::Integration"
    assert integration["Properties"]["IntegrationType"] == "AWS_PROXY"
    assert integration["Properties"]["ApiId"] == {"Ref": "WebSocketApi"}
    (function_name,) = set(refs_in(integration["Properties"]["IntegrationUri"])) - {
        "AWS::Partition",
        "AWS::Region",
    }
    return function_name


def test_given_the_websocket_api_then_routes_are_selected_by_the_action_field(
    template: Template,
) -> None:
    api = template["Resources"]["WebSocketApi"]["Properties"]
    assert api["ProtocolType"] == "WEBSOCKET"
    assert api["RouteSelectionExpression"] == "$request.body.action"


@pytest.mark.parametrize(("route_key", "function_name"), sorted(WEBSOCKET_ROUTES.items()))
def test_given_a_websocket_route_when_it_is_called_then_its_function_is_invoked(
    template: Template, route_key: str, function_name: str
) -> None:
    routes = _routes_by_key(template)
    assert route_key in routes, f"no route {route_key}"
    _, route = routes[route_key]
    assert route["Properties"]["ApiId"] == {"Ref": "WebSocketApi"}
    assert _function_behind(template, route) == function_name


@pytest.mark.parametrize(("route_key", "function_name"), sorted(WEBSOCKET_ROUTES.items()))
def test_given_a_websocket_route_then_api_gateway_may_invoke_its_function_for_that_route_only(
    template: Template, route_key: str, function_name: str
) -> None:
    # One permission per route: a function that serves several routes may be invoked for those only.
    routes_of_function = sorted(key for key, name in WEBSOCKET_ROUTES.items() if name == function_name)
    permissions = [
        permission["Properties"]
        for permission in resources_of_type(template, "AWS::Lambda::Permission").values()
        if permission["Properties"]["FunctionName"] == {"Ref": function_name}
    ]
    assert len(permissions) == len(routes_of_function), function_name
    assert all(permission["Principal"] == "apigateway.amazonaws.com" for permission in permissions)
    source_arns = [permission["SourceArn"]["Fn::Sub"] for permission in permissions]
    suffixes = sorted(arn[arn.index("${WebSocketApi}") :] for arn in source_arns)
    assert suffixes == [f"${{WebSocketApi}}/*/{key}" for key in routes_of_function]
    assert route_key in routes_of_function


@pytest.mark.parametrize("route_key", ["sendMessage", "editMessage", "deleteMessage", "typing", "$default"])
def test_given_a_two_way_route_when_the_function_answers_then_the_body_goes_back_to_the_sender(
    template: Template, route_key: str
) -> None:
    route_name, route = _routes_by_key(template)[route_key]
    assert route["Properties"]["RouteResponseSelectionExpression"] == "$default"
    responses = [
        response["Properties"]
        for response in resources_of_type(template, "AWS::ApiGatewayV2::RouteResponse").values()
        if response["Properties"]["RouteId"] == {"Ref": route_name}
    ]
    assert [response["RouteResponseKey"] for response in responses] == ["$default"]


def test_given_the_websocket_stage_then_it_deploys_itself_and_is_throttled(
    template: Template,
) -> None:
    (stage,) = resources_of_type(template, "AWS::ApiGatewayV2::Stage").values()
    properties = stage["Properties"]
    assert properties["ApiId"] == {"Ref": "WebSocketApi"}
    assert properties["AutoDeploy"] is True
    settings = properties["DefaultRouteSettings"]
    assert settings["ThrottlingRateLimit"] > 0
    assert settings["ThrottlingBurstLimit"] > 0


def test_given_the_http_api_when_each_public_route_is_called_then_the_http_function_answers(
    functions: dict[str, dict[str, Any]],
) -> None:
    served: set[tuple[str, str]] = set()
    for function in functions.values():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                assert event["Properties"]["ApiId"] == {"Ref": "HttpApi"}
                served.add((event["Properties"]["Method"], event["Properties"]["Path"]))
    assert served == HTTP_ROUTES
    events = functions["HttpApiFunction"]["Properties"]["Events"].values()
    assert {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in events} == HTTP_ROUTES


def test_given_an_allowed_origin_then_cors_admits_only_that_origin_and_otherwise_none(
    template: Template,
) -> None:
    cors = template["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"]
    condition, with_origin, without_origin = cors["Fn::If"]
    assert condition == "HasAllowedOrigin"
    assert template["Conditions"]["HasAllowedOrigin"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AllowedOrigin"}, ""]}]
    }
    assert with_origin["AllowOrigins"] == [{"Ref": "AllowedOrigin"}]
    assert sorted(with_origin["AllowMethods"]) == ["DELETE", "GET", "OPTIONS", "PATCH", "POST"]
    assert sorted(header.lower() for header in with_origin["AllowHeaders"]) == [
        "authorization",
        "content-type",
    ]
    assert [header.lower() for header in with_origin["ExposeHeaders"]] == ["retry-after"]
    assert without_origin == {"Ref": "AWS::NoValue"}


def test_given_the_stream_when_messages_are_inserted_then_fanout_receives_them_in_safe_batches(
    template: Template,
) -> None:
    properties = resources_of_type(template, "AWS::Lambda::EventSourceMapping")["FanoutStreamMapping"][
        "Properties"
    ]
    assert properties["FunctionName"] == {"Ref": "FanoutFunction"}
    assert properties["StartingPosition"] == "LATEST"
    assert properties["BisectBatchOnFunctionError"] is True
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 <= properties["BatchSize"] <= 1000
    assert properties["MaximumBatchingWindowInSeconds"] <= 1
    assert properties["MaximumRetryAttempts"] >= 1
    assert "OnFailure" in properties["DestinationConfig"]
    # messages (they have a transport) and their changes (chat/edits.py); the inserts of sign-outs
    # (chat/revocations.py) and of deletes' tombstones; never a TTL's REMOVE but a membership's:
    # presence (chat/presence.py) is a membership's first write and its delete (never its
    # rewrites, so a second tab or a page's 2-hour reconnect invokes nothing), and typing
    patterns = {
        json.dumps(p["dynamodb"], sort_keys=True): p["eventName"]
        for p in (json.loads(f["Pattern"]) for f in properties["FilterCriteria"]["Filters"])
    }
    assert patterns == {
        '{"NewImage": {"transport": {"S": ["websocket", "http"]}}}': ["INSERT", "MODIFY"],
        '{"Keys": {"sk": {"S": ["revoked", "deleted"]}}}': ["INSERT"],
        '{"NewImage": {"kind": {"S": ["presence", "typing"]}}}': ["INSERT"],
        '{"NewImage": {"kind": {"S": ["typing"]}}}': ["MODIFY"],
        '{"OldImage": {"kind": {"S": ["presence"]}}}': ["REMOVE"],
    }


def test_given_the_connect_route_then_the_session_authorizer_guards_it(template: Template) -> None:
    _, route = _routes_by_key(template)["$connect"]
    assert route["Properties"]["AuthorizationType"] == "CUSTOM"
    assert route["Properties"]["AuthorizerId"] == {"Ref": "WebSocketAuthorizer"}
    authorizer = template["Resources"]["WebSocketAuthorizer"]["Properties"]
    assert authorizer["ApiId"] == {"Ref": "WebSocketApi"}
    assert authorizer["AuthorizerType"] == "REQUEST"
    assert authorizer["IdentitySource"] == ["route.request.querystring.token"]
    assert "${AuthorizerFunction.Arn}" in authorizer["AuthorizerUri"]["Fn::Sub"]
    for key, other in _routes_by_key(template).items():
        if key != "$connect":  # WebSocket authorizers run on $connect only; its context reaches the rest
            assert other[1]["Properties"]["AuthorizationType"] == "NONE", key


def test_given_the_authorizer_then_api_gateway_may_invoke_it_as_this_apis_authorizer_only(
    template: Template,
) -> None:
    (permission,) = [
        p["Properties"]
        for p in resources_of_type(template, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] == {"Ref": "AuthorizerFunction"}
    ]
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert permission["SourceArn"]["Fn::Sub"].endswith("${WebSocketApi}/authorizers/${WebSocketAuthorizer}")


@pytest.mark.parametrize(("resource", "api"), [("WebSocketStage", "websocket"), ("HttpApi", "http")])
def test_given_either_api_then_its_stage_writes_access_logs_without_tokens_or_query_strings(
    template: Template, resource: str, api: str
) -> None:
    settings = template["Resources"][resource]["Properties"]["AccessLogSettings"]
    group_name = settings["DestinationArn"]["Fn::GetAtt"][0]
    group = template["Resources"][group_name]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 30
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    fields = json.loads(settings["Format"])
    wanted = {"requestId", "ip", "routeKey", "status"} | (
        {"connectionId", "userId"} if api == "websocket" else set()
    )
    assert wanted <= set(fields)
    assert fields["ip"] == "$context.identity.sourceIp"
    format_text = settings["Format"].lower()
    for leak in ("querystring", "token", "path", "authorization", "header"):
        assert leak not in format_text, leak


def test_given_a_ping_when_it_arrives_then_api_gateway_answers_from_dynamodb_without_a_function(
    template: Template,
) -> None:
    """The heartbeat route: an AWS service integration, DynamoDB Query on this region's messages
    table for the connection's room, newest first, one item, its id only; its integration
    responses are the pong (any 2xx) and the `unavailable` error frame (anything else); a route
    response sends the answer back; no function, no permission, no authorizer."""
    route_name, route = _routes_by_key(template)["ping"]
    properties = route["Properties"]
    assert properties["ApiId"] == {"Ref": "WebSocketApi"}
    assert properties["AuthorizationType"] == "NONE"  # authorization happens only at $connect
    assert properties["RouteResponseSelectionExpression"] == "$default"
    integration_name = properties["Target"]["Fn::Sub"].removeprefix("integrations/${").removesuffix("}")
    integration = template["Resources"][integration_name]["Properties"]
    assert integration["ApiId"] == {"Ref": "WebSocketApi"}
    assert integration["IntegrationType"] == "AWS"
    assert integration["IntegrationMethod"] == "POST"
    assert integration["IntegrationUri"] == {
        "Fn::Sub": "arn:${AWS::Partition}:apigateway:${AWS::Region}:dynamodb:action/Query"
    }
    assert integration["CredentialsArn"] == {"Fn::GetAtt": ["PingIntegrationRole", "Arn"]}
    assert integration["TemplateSelectionExpression"] == "\\$default"  # the literal key `$default`
    request = json.loads(
        integration["RequestTemplates"]["$default"]["Fn::Sub"].replace("${MessagesTableName}", "messages")
    )
    assert request == {
        "TableName": "messages",
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": "room#$context.authorizer.room"}},
        "ScanIndexForward": False,
        "Limit": 1,
        "ConsistentRead": False,  # eventually consistent: half a read unit per 4 KB
        "Select": "SPECIFIC_ATTRIBUTES",
        "ProjectionExpression": "id",
    }
    responses = {
        r["Properties"]["IntegrationResponseKey"]: r["Properties"]
        for r in resources_of_type(template, "AWS::ApiGatewayV2::IntegrationResponse").values()
        if r["Properties"]["IntegrationId"] == {"Ref": integration_name}
    }
    assert set(responses) == {"/2\\d\\d/", "$default"}  # the status matched, else the default
    for response in responses.values():
        assert response["ApiId"] == {"Ref": "WebSocketApi"}
        assert response["TemplateSelectionExpression"] == "\\$default"
    pong = responses["/2\\d\\d/"]["ResponseTemplates"]["$default"]["Fn::Sub"]
    assert json.loads(pong) == {
        "type": "pong",
        "latest": "$input.path('$.Items[0].id.S')",
        "region": "${AWS::Region}",
    }
    assert json.loads(responses["$default"]["ResponseTemplates"]["$default"]) == {
        "type": "error",
        "id": None,
        "code": "unavailable",
        "message": "this region cannot read its messages: reconnect to another region",
    }
    route_responses = [
        r["Properties"]["RouteResponseKey"]
        for r in resources_of_type(template, "AWS::ApiGatewayV2::RouteResponse").values()
        if r["Properties"]["RouteId"] == {"Ref": route_name}
    ]
    assert route_responses == ["$default"]
    (stage,) = resources_of_type(template, "AWS::ApiGatewayV2::Stage").values()
    assert route_name in stage["DependsOn"]

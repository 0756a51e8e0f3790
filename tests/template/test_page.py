"""The chat page's hosting: a private bucket per region, one CloudFront distribution (owned by the
us-east-1 stack) that fails over between them, its security headers, and chat.<domain>."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.template.cfn import Context, Template, stack_in

DOMAIN = {"DomainName": "example.com", "HostedZoneId": "Z0123456789ABC"}
PEER = "https://k1l2m3n4o5.execute-api.eu-west-2.amazonaws.com wss://p6q7r8s9t0.execute-api.eu-west-2.amazonaws.com"
DISTRIBUTION_ID = "E2QWRUHAPOMQZL"
REGIONS = ("us-east-1", "eu-west-2")


def _statements(stack: Context) -> list[dict[str, Any]]:
    """The page bucket policy's statements as this stack would write them."""
    policy = stack.resources()["PageBucketPolicy"]["Properties"]["PolicyDocument"]
    resolved = [stack.resolve(statement) for statement in policy["Statement"]]
    return [statement for statement in resolved if statement != {"Ref": "AWS::NoValue"}]


def _distribution(stack: Context) -> dict[str, Any]:
    config: dict[str, Any] = stack.resources()["PageDistribution"]["Properties"]["DistributionConfig"]
    return config


def _csp(stack: Context) -> dict[str, list[str]]:
    headers = stack.resources()["PageHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]
    csp = headers["SecurityHeadersConfig"]["ContentSecurityPolicy"]
    assert csp["Override"] is True
    text = stack.resolve(csp["ContentSecurityPolicy"])
    directives = [part.split() for part in text.split(";") if part.strip()]
    return {name: sources for name, *sources in directives}


@pytest.mark.parametrize("region", REGIONS)
def test_given_either_region_then_its_page_bucket_blocks_every_public_path(
    template: Template, region: str
) -> None:
    bucket = stack_in(template, region).resources()["PageBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert "WebsiteConfiguration" not in bucket
    assert "AccessControl" not in bucket


@pytest.mark.parametrize(
    ("region", "overrides", "source_id"),
    [
        ("us-east-1", {}, {"Ref": "PageDistribution"}),
        ("eu-west-2", {"PageDistributionId": DISTRIBUTION_ID}, DISTRIBUTION_ID),
    ],
)
def test_given_a_page_bucket_then_only_the_chat_page_distribution_may_read_it_and_only_over_tls(
    template: Template, region: str, overrides: dict[str, str], source_id: Any
) -> None:
    statements = _statements(stack_in(template, region, overrides))
    (allow,) = (s for s in statements if s["Effect"] == "Allow")
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    assert allow["Resource"] == {"Fn::Sub": "${PageBucket.Arn}/*"}
    (condition,) = allow["Condition"]["StringEquals"].items()
    assert condition[0] == "AWS:SourceArn"
    text, variables = condition[1]["Fn::Sub"]
    assert text == "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${Id}"
    assert stack_in(template, region, overrides).resolve(variables["Id"]) == source_id
    (deny,) = (s for s in statements if s["Effect"] == "Deny")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_given_no_distribution_id_yet_then_the_other_regions_bucket_admits_nobody(template: Template) -> None:
    statements = _statements(stack_in(template, "eu-west-2"))
    assert [s["Effect"] for s in statements] == ["Deny"]


def test_given_both_stacks_then_only_the_us_east_1_stack_owns_the_distribution(template: Template) -> None:
    page_parts = {"PageDistribution", "PageOriginAccessControl", "PageHeadersPolicy"}
    assert page_parts <= stack_in(template, "us-east-1").resources().keys()
    assert not page_parts & stack_in(template, "eu-west-2").resources().keys()
    rules = template["Rules"]
    assert any(
        assertion["Assert"] == {"Fn::Contains": [{"Ref": "ReplicaRegions"}, "us-east-1"]}
        for rule in rules.values()
        for assertion in rule["Assertions"]
    )


def _origins(stack: Context) -> dict[str, dict[str, Any]]:
    """The distribution's origins as this stack would write them, by id."""
    resolved = [stack.resolve(origin) for origin in _distribution(stack)["Origins"]]
    return {origin["Id"]: origin for origin in resolved if origin != {"Ref": "AWS::NoValue"}}


def test_given_the_other_regions_bucket_not_reported_yet_then_no_origin_names_a_bucket_we_do_not_own(
    template: Template,
) -> None:
    """Before the eu-west-2 stack exists (or after it failed or was deleted) its bucket name is
    predictable and unclaimed: anyone could create it and serve the chat page's origin."""
    owner = stack_in(template, "us-east-1")
    origins = _origins(owner)
    assert [owner.resolve(origin["DomainName"]) for origin in origins.values()] == [
        {"Fn::GetAtt": ["PageBucket", "RegionalDomainName"]}
    ]
    config = _distribution(owner)
    assert owner.resolve(config["OriginGroups"]) == {"Ref": "AWS::NoValue"}
    assert owner.resolve(config["DefaultCacheBehavior"]["TargetOriginId"]) in origins


def test_given_the_distribution_then_its_origin_group_fails_over_between_both_regions_buckets(
    template: Template,
) -> None:
    peer = stack_in(template, "eu-west-2")
    peer_bucket = peer.resolve(peer.resources()["PageBucket"]["Properties"]["BucketName"])
    owner = stack_in(template, "us-east-1", {"PeerPageBucket": peer_bucket})
    config = _distribution(owner)
    origins = _origins(owner)
    group_config = owner.resolve(config["OriginGroups"])
    (group,) = group_config["Items"]
    assert group_config["Quantity"] == 1
    members = [member["OriginId"] for member in group["Members"]["Items"]]
    assert group["Members"]["Quantity"] == len(members) == 2
    domains = [owner.resolve(origins[member]["DomainName"]) for member in members]
    assert domains == [
        {"Fn::GetAtt": ["PageBucket", "RegionalDomainName"]},
        f"{peer_bucket}.s3.eu-west-2.amazonaws.com",
    ]
    for member in members:
        assert origins[member]["OriginAccessControlId"] == {"Fn::GetAtt": ["PageOriginAccessControl", "Id"]}
        assert origins[member]["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    first = origins[members[0]]  # a dead region's bucket is given up on quickly
    assert first["ConnectionAttempts"] * first["ConnectionTimeout"] <= 5
    codes = group["FailoverCriteria"]["StatusCodes"]
    assert {403, 500, 502, 503, 504} <= set(codes["Items"])
    assert codes["Quantity"] == len(codes["Items"])
    behaviour = config["DefaultCacheBehavior"]
    assert owner.resolve(behaviour["TargetOriginId"]) == group["Id"]
    assert behaviour["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behaviour["AllowedMethods"] == ["GET", "HEAD"]
    assert behaviour["ResponseHeadersPolicyId"] == {"Ref": "PageHeadersPolicy"}
    control = owner.resources()["PageOriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert (control["OriginAccessControlOriginType"], control["SigningBehavior"]) == ("s3", "always")


@pytest.mark.parametrize(
    ("overrides", "routed"),
    [({}, []), (DOMAIN, ["https://api.example.com", "wss://ws.example.com"])],
)
def test_given_the_page_then_it_may_connect_only_to_the_chat_apis_and_never_be_framed(
    template: Template, overrides: dict[str, str], routed: list[str]
) -> None:
    owner = stack_in(template, "us-east-1", overrides | {"PeerConnectSources": PEER})
    csp = _csp(owner)
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == ["'self'"]
    assert csp["object-src"] == ["'none'"]
    # The routed names, then each region's own endpoints: the client falls back to those
    # (frontend/README.md) when the routed name points at a dead region.
    assert csp["connect-src"] == [
        "'self'",
        *routed,
        "https://${HttpApi}.execute-api.us-east-1.amazonaws.com",
        "wss://${WebSocketApi}.execute-api.us-east-1.amazonaws.com",
        *PEER.split(),
    ]
    assert not any("unsafe" in source for sources in csp.values() for source in sources)
    headers = owner.resources()["PageHeadersPolicy"]["Properties"]["ResponseHeadersPolicyConfig"]
    security = headers["SecurityHeadersConfig"]
    assert security["StrictTransportSecurity"]["Override"] is True
    assert security["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert security["ContentTypeOptions"] == {"Override": True}


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        (PEER, True),
        ("https://a.execute-api.eu-west-2.amazonaws.com", True),
        ("https://a.example.com; script-src *", False),
        ("https://a.example.com 'unsafe-inline'", False),
        ("http://a.example.com", False),
        ("https://a.example.com/path", False),
        ("*", False),
    ],
)
def test_given_peer_connect_sources_then_only_plain_https_and_wss_origins_are_accepted(
    template: Template, value: str, accepted: bool
) -> None:
    pattern = template["Parameters"]["PeerConnectSources"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is accepted


def test_given_a_domain_then_the_page_is_chat_domain_with_a_us_east_1_certificate(template: Template) -> None:
    owner = stack_in(template, "us-east-1", DOMAIN)
    created = owner.resources()
    certificate = created["PageCertificate"]["Properties"]
    assert owner.resolve(certificate["DomainName"]) == "chat.example.com"
    assert certificate["ValidationMethod"] == "DNS"
    assert certificate["DomainValidationOptions"][0]["HostedZoneId"] == {"Ref": "HostedZoneId"}
    config = _distribution(owner)
    assert [owner.resolve(alias) for alias in owner.resolve(config["Aliases"])] == ["chat.example.com"]
    viewer = owner.resolve(config["ViewerCertificate"])
    assert viewer["AcmCertificateArn"] == {"Ref": "PageCertificate"}
    assert viewer["SslSupportMethod"] == "sni-only"
    records = [r["Properties"] for r in created.values() if r["Type"] == "AWS::Route53::RecordSet"]
    page_records = [r for r in records if owner.resolve(r["Name"]) == "chat.example.com."]
    assert sorted(r["Type"] for r in page_records) == ["A", "AAAA"]
    for record in page_records:
        assert record["AliasTarget"]["DNSName"] == {"Fn::GetAtt": ["PageDistribution", "DomainName"]}
        assert record["AliasTarget"]["HostedZoneId"] == "Z2FDTNDATAQYW2"  # CloudFront's alias zone
    assert "PageCertificate" not in stack_in(template, "eu-west-2", DOMAIN).resources()
    url = template["Outputs"]["PageUrl"]["Value"]
    assert owner.resolve(url) == "https://chat.example.com"


def test_given_no_domain_then_the_page_is_served_on_cloudfronts_own_name(template: Template) -> None:
    owner = stack_in(template, "us-east-1")
    config = _distribution(owner)
    assert owner.resolve(config["ViewerCertificate"]) == {"CloudFrontDefaultCertificate": True}
    assert owner.resolve(config["Aliases"]) == {"Ref": "AWS::NoValue"}
    assert owner.resolve(template["Outputs"]["PageUrl"]["Value"]) == "https://${PageDistribution.DomainName}"


def test_given_the_outputs_then_make_deploy_finds_the_buckets_the_distribution_and_the_page(
    template: Template,
) -> None:
    outputs = template["Outputs"]
    assert outputs["PageBucketName"]["Value"] == {"Ref": "PageBucket"}
    assert "Condition" not in outputs["PageBucketName"]
    for name in ("PageUrl", "PageDistributionId"):
        assert outputs[name]["Condition"] == "OwnsPageDistribution"
    assert stack_in(template, "us-east-1").condition("OwnsPageDistribution")
    assert not stack_in(template, "eu-west-2").condition("OwnsPageDistribution")


@pytest.mark.parametrize(
    ("overrides", "says"),
    [({"AlarmEmail": "ops@example.com"}, "ops@example.com"), ({}, "no subscriber")],
)
def test_given_an_alarm_address_or_none_then_the_stack_says_where_alarms_go(
    template: Template, overrides: dict[str, str], says: str
) -> None:
    stack = stack_in(template, "eu-west-2", overrides)
    value = stack.resolve(template["Outputs"]["AlarmNotifications"]["Value"])
    assert says in value
    assert "${AlarmTopic}" in value  # the topic's ARN, which CloudFormation fills in
    assert ("AlarmEmailSubscription" in stack.resources()) is bool(overrides)

"""What the local stack makes from the template besides tables: the session key as CloudFormation
makes it, and the functions' environment with the stack's parameters."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from moto.server import ThreadedMotoServer

from chat.sessions import SigningKeys
from localcloud.aws import provision
from localcloud.lambda_.runtime import region_environment
from localcloud.stack.cli import parse_args
from stack_definition.template import load

TEMPLATE = load()


@pytest.fixture
def aws_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_the_session_key_is_generated_once_and_readable_by_name_in_every_region(aws_endpoint: str) -> None:
    # moto's servers in one process share their state: a stack name of its own keeps this secret apart.
    stack = replace(TEMPLATE, stack_name=f"provision-{uuid.uuid4().hex[:8]}")
    names = provision.create_secrets(stack, aws_endpoint)
    secret = TEMPLATE.raw["Resources"]["SessionSigningKey"]["Properties"]
    assert names == {"SessionSigningKey": stack.context(TEMPLATE.regions[0]).resolve(secret["Name"])}
    values = {
        region: provision.client("secretsmanager", aws_endpoint, region).get_secret_value(
            SecretId=names["SessionSigningKey"]
        )["SecretString"]
        for region in TEMPLATE.regions
    }
    assert len(set(values.values())) == 1  # a replica, not a second key: sessions work anywhere
    document = json.loads(values[TEMPLATE.regions[0]])
    generate = secret["GenerateSecretString"]
    assert document["kid"] == json.loads(generate["SecretStringTemplate"])["kid"]
    key = document[generate["GenerateStringKey"]]
    assert len(key) == generate["PasswordLength"]
    assert key.isalnum()  # ExcludePunctuation
    assert SigningKeys.from_secret(values[TEMPLATE.regions[1]]).current == document["kid"]


def environment(**parameters: str) -> dict[str, str]:
    return region_environment(
        TEMPLATE,
        "eu-west-2",
        parameters=parameters,
        refs={"ConnectionsTable": "connections"}
        | {name: f"http://127.0.0.1:1/123456789012/{name}" for name in TEMPLATE.queues},
        aws_endpoint="http://127.0.0.1:1",
        local_urls={TEMPLATE.websocket_api: "http://127.0.0.1:2"},
    )


def test_the_functions_read_secrets_from_the_local_endpoint_and_take_parameter_overrides() -> None:
    default, overridden = environment(), environment(MessagesPerSecond="1000")
    assert default["AWS_ENDPOINT_URL_SECRETS_MANAGER"] == "http://127.0.0.1:1"
    assert default["MESSAGES_PER_SECOND"] == str(TEMPLATE.raw["Parameters"]["MessagesPerSecond"]["Default"])
    assert overridden["MESSAGES_PER_SECOND"] == "1000"


@pytest.mark.parametrize("pair", ["NoSuchParameter=1", "MessagesPerSecond"])
def test_a_parameter_override_the_template_does_not_declare_is_refused(pair: str) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--parameter-overrides", pair])
    assert parse_args(["--parameter-overrides", "MessageBurst=50"]).parameter_overrides == {
        "MessageBurst": "50"
    }

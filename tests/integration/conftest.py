"""Handlers called with API Gateway and DynamoDB Streams events, boto3 talking to a moto server.

The tables come from template.yaml (through the local stack's provisioner), the environment
from the template's function definitions, so the tests and the stack cannot drift apart. The
session secret is made as the primary region's stack makes it: in us-east-1, replicated to
eu-west-2 under the same name.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import pytest
from moto.server import ThreadedMotoServer

from chat import composition, sessions
from localcloud.aws import provision
from localcloud.aws.server import atomic_dynamodb_writes
from localcloud.lambda_.context import LambdaContext
from localcloud.lambda_.runtime import region_environment
from stack_definition import template
from tests.integration.helpers import ADA

REGIONS = ("us-east-1", "eu-west-2")
STAGE = "prod"
# Per-user limits for the tests of other rules; the limits' own tests use the template's defaults.
GENEROUS_LIMITS = {
    "MESSAGES_PER_SECOND": "1000",
    "MESSAGE_BURST": "1000",
    "MAX_CONNECTIONS_PER_USER": "1000",
    "GUEST_SIGN_INS_PER_MINUTE": "100000",
    "GUEST_SIGN_IN_BURST": "100000",
    "GUEST_MESSAGES_PER_SECOND_PER_ROOM": "1000",
    "GUEST_ROOM_BURST": "1000",
}


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
    atomic_dynamodb_writes()  # as the local stack's moto: conditional writes as atomic as AWS's
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def chat_template() -> template.Template:
    return template.load()


@pytest.fixture(scope="session")
def tables(aws_endpoint: str, chat_template: template.Template) -> dict[str, dict[str, str]]:
    return {region: provision.create_tables(chat_template, aws_endpoint, region) for region in REGIONS}


@pytest.fixture(scope="session")
def queues(
    aws_endpoint: str, chat_template: template.Template
) -> dict[str, dict[str, provision.QueueEndpoint]]:
    return {region: provision.create_queues(chat_template, aws_endpoint, region) for region in REGIONS}


@pytest.fixture(scope="session")
def session_secret(aws_endpoint: str, chat_template: template.Template) -> str:
    """The secret's value, as CloudFormation's GenerateSecretString makes it."""
    resource = chat_template.raw["Resources"]["SessionSigningKey"]["Properties"]
    name = chat_template.context(REGIONS[0]).resolve(resource["Name"])
    value = json.dumps({"kid": "k1", "secret": secrets.token_urlsafe(48)})
    client = provision.client("secretsmanager", aws_endpoint, REGIONS[0])
    client.create_secret(Name=name, SecretString=value, AddReplicaRegions=[{"Region": REGIONS[1]}])
    return value


class ManagementApiDouble(ThreadingHTTPServer):
    """`POST /{stage}/@connections/{id}` as API Gateway answers it: 200, or 410 for gone ids."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ManagementHandler)
        self.gone: set[str] = set()
        self.scripted: dict[str, list[int]] = {}  # connection id -> statuses to answer first
        self.attempts: dict[str, int] = {}
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{STAGE}"

    def frames_for(self, connection_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [frame for cid, frame in self.posts if cid == connection_id]


class _ManagementHandler(BaseHTTPRequestHandler):
    server: ManagementApiDouble

    def do_POST(self) -> None:
        prefix = f"/{STAGE}/@connections/"
        assert self.path.startswith(prefix), self.path
        connection_id = unquote(self.path.removeprefix(prefix))
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            self.server.attempts[connection_id] = self.server.attempts.get(connection_id, 0) + 1
            scripted = self.server.scripted.get(connection_id)
            status = scripted.pop(0) if scripted else None
        if status is not None:
            error = {429: "LimitExceededException", 500: "InternalServerErrorException"}.get(status, "Error")
            payload = b'{"message": "scripted failure"}'
            self.send_response(status)
            self.send_header("x-amzn-ErrorType", error)
        elif connection_id in self.server.gone:
            self.send_response(410)
            self.send_header("x-amzn-ErrorType", "GoneException")
            payload = b'{"message": null}'
        else:
            with self.server.lock:
                self.server.posts.append((connection_id, json.loads(body)))
            self.send_response(200)
            payload = b""
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def management_api() -> Iterator[ManagementApiDouble]:
    server = ManagementApiDouble()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def in_region(
    monkeypatch: pytest.MonkeyPatch,
    aws_endpoint: str,
    chat_template: template.Template,
    tables: dict[str, dict[str, str]],
    queues: dict[str, dict[str, provision.QueueEndpoint]],
    session_secret: str,
) -> Iterator[Callable[..., None]]:
    """Switch the process to one region's Lambda environment, as that region's functions see it."""

    def switch(
        region: str, management_url: str = "http://127.0.0.1:9/prod", *, template_limits: bool = False
    ) -> None:
        env = region_environment(
            chat_template,
            region,
            refs={"ConnectionsTable": tables[region]["connections"]}
            | {name: queue.url for name, queue in queues[region].items()},
            aws_endpoint=aws_endpoint,
            local_urls={"WebSocketApi": management_url.removesuffix(f"/{STAGE}")},
        )
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        if not template_limits:  # tests of other rules send more than one person would
            for name, value in GENEROUS_LIMITS.items():
                monkeypatch.setenv(name, value)
        composition.reset()

    yield switch
    composition.reset()


@pytest.fixture
def token_for(session_secret: str) -> Callable[..., str]:
    """A session token as POST /session would issue it (the tests of POST /session use the route)."""
    keys = sessions.SigningKeys.from_secret(session_secret)

    def make(user: dict[str, str] = ADA, *, ttl: int = 3600) -> str:
        now = int(time.time())
        session = sessions.Session(
            user_id=user["userId"],
            name=user["name"],
            expires_at=now + ttl,
            session_id=sessions.new_session_id(),
            started_at=now,
        )
        return sessions.sign(session, keys, now=now)

    return make


@pytest.fixture
def context() -> LambdaContext:
    return LambdaContext("test-function", "us-east-1", 256, 10)

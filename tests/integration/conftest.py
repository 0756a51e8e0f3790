"""Handlers called with API Gateway and DynamoDB Streams events, boto3 talking to a moto server.

The tables come from template.yaml (through the local stack's provisioner), the environment
from the template's function definitions, so the tests and the stack cannot drift apart.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import pytest
from moto.server import ThreadedMotoServer

from chat import clients
from localcloud import provision, template
from localcloud.events import LambdaContext
from localcloud.runtime import region_environment

REGIONS = ("us-east-1", "eu-west-2")
STAGE = "prod"


@pytest.fixture(scope="session")
def aws_endpoint() -> Iterator[str]:
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
) -> Iterator[Callable[..., None]]:
    """Switch the process to one region's Lambda environment, as that region's functions see it."""

    def switch(region: str, management_url: str = "http://127.0.0.1:9/prod") -> None:
        env = region_environment(
            chat_template,
            region,
            refs={"ConnectionsTable": tables[region]["connections"]},
            aws_endpoint=aws_endpoint,
            local_urls={"WebSocketApi": management_url.removesuffix(f"/{STAGE}")},
        )
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        clients.reset()

    yield switch
    clients.reset()


@pytest.fixture
def context() -> LambdaContext:
    return LambdaContext("test-function", "us-east-1", 256, 10)

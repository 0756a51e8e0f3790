"""A local OpenID Connect provider for tests: a discovery document and a key set served over plain
HTTP on loopback by an in-process server, with its own RSA keys, issuing ID tokens with whatever
claims and header a test chooses. Its answers can be replaced (`answers`) to play a provider that
misbehaves: a malformed document, an error status, a redirect.

The keys and signatures come from the `cryptography` package (a test dependency, through moto);
the chat's own verifier does not use it."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

AUDIENCE = "chat-app-client"
ISSUER_PATH = "/idp"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def jwk(key: rsa.RSAPrivateKey, kid: str, **fields: Any) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    e = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(n), "e": b64(e), **fields}


def signed(header: dict[str, Any], payload: bytes, key: rsa.RSAPrivateKey) -> str:
    """A compact JWS over exactly these payload bytes (so a test can send JSON that json.dumps
    would never write, such as 1e400)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(payload)}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class OidcProvider(ThreadingHTTPServer):
    """`GET {issuer}/.well-known/openid-configuration` and `GET {issuer}/jwks.json`."""

    def __init__(self, *, trailing_slash: bool = False) -> None:
        super().__init__(("127.0.0.1", 0), _ProviderHandler)
        self.base = f"http://127.0.0.1:{self.server_address[1]}{ISSUER_PATH}"
        self.issuer = self.base + ("/" if trailing_slash else "")  # as its discovery document says
        self.key = new_key()
        self.kid = "key-1"
        self.keys: list[dict[str, Any]] = [jwk(self.key, self.kid)]
        self.answers: dict[str, Answer] = {}  # path -> a scripted answer instead of the real one
        self.requests: list[str] = []
        self.lock = threading.Lock()

    @property
    def discovery_path(self) -> str:
        return f"{ISSUER_PATH}/.well-known/openid-configuration"

    @property
    def jwks_path(self) -> str:
        return f"{ISSUER_PATH}/jwks.json"

    def document(self, path: str) -> Answer:
        if path in self.answers:
            return self.answers[path]
        if path == self.discovery_path:
            discovery = {"issuer": self.issuer, "jwks_uri": self.base + "/jwks.json"}
            return Answer(body=json.dumps(discovery).encode())
        if path == self.jwks_path:
            return Answer(body=json.dumps({"keys": self.keys}).encode())
        return Answer(status=404, body=b"{}")

    def claims(self, **changes: Any) -> dict[str, Any]:
        """An ID token's claims as this provider issues them for the chat, with `changes`
        (a value of None removes the claim)."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": "user-123",
            "iat": now,
            "exp": now + 600,
            "auth_time": now - 30,
            "name": "Ada",
        }
        claims.update(changes)
        return {name: value for name, value in claims.items() if value is not None}

    def id_token(
        self,
        *,
        key: rsa.RSAPrivateKey | None = None,
        header: dict[str, Any] | None = None,
        payload: bytes | None = None,
        **changes: Any,
    ) -> str:
        body = payload if payload is not None else json.dumps(self.claims(**changes)).encode()
        return signed({"alg": "RS256", "kid": self.kid, **(header or {})}, body, key or self.key)


class _ProviderHandler(BaseHTTPRequestHandler):
    server: OidcProvider

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.requests.append(self.path)
            answer = self.server.document(self.path)
        self.send_response(answer.status)
        for name, value in {"Content-Type": "application/json", **answer.headers}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def running(*, trailing_slash: bool = False) -> Iterator[OidcProvider]:
    provider = OidcProvider(trailing_slash=trailing_slash)
    thread = threading.Thread(target=provider.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        provider.shutdown()
        provider.server_close()

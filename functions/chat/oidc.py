"""OpenID Connect sign-in: verify a provider's ID token (RS256) once, then the chat issues its own
session. Pure Python, standard library only: RSASSA-PKCS1-v1_5 with SHA-256 is one modular
exponentiation and a byte comparison, far cheaper to ship than the `cryptography` package.

The provider's keys come from its discovery document (`{issuer}/.well-known/openid-configuration`,
then its `jwks_uri`), fetched through an injected `fetch(url) -> bytes` and cached per container
for an hour; a token signed with a key id not in the cache refetches, at most once a minute. A
provider outage stops new sign-ins with it only after that cache expires, and never the sessions
already issued (they are the chat's own).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from chat.model import ChatError
from chat.ports import Account, StoreError
from chat.sessions import LEEWAY_SECONDS, b64decode, split_token

# DER of DigestInfo{sha256, NULL} before the 32-byte hash (RFC 8017 section 9.2, note 1).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
MIN_MODULUS_BYTES = 256  # 2048-bit keys and up
KEYS_TTL_SECONDS = 3600.0
REFETCH_SECONDS = 60.0

Fetch = Callable[[str], bytes]


class InvalidIdToken(ChatError):
    status = 401

    def __init__(self, message: str) -> None:
        super().__init__("invalid_id_token", message)


def rsa_sha256_verify(modulus: int, exponent: int, message: bytes, signature: bytes) -> bool:
    """RSASSA-PKCS1-v1_5 verification with SHA-256 (RFC 8017 section 8.2.2)."""
    size = (modulus.bit_length() + 7) // 8
    if size < MIN_MODULUS_BYTES or len(signature) != size:
        return False
    value = int.from_bytes(signature, "big")
    if value >= modulus:
        return False
    encoded = pow(value, exponent, modulus).to_bytes(size, "big")
    digest = _SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    expected = b"\x00\x01" + b"\xff" * (size - len(digest) - 3) + b"\x00" + digest
    return hmac.compare_digest(encoded, expected)


def https_fetch(url: str) -> bytes:
    if not url.startswith("https://"):
        raise ValueError(f"refusing to fetch provider keys over anything but HTTPS: {url}")
    import urllib.request  # http.client and email: only when keys are fetched, not at cold start

    with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - https only, checked above
        body: bytes = response.read(1_000_000)
        return body


class OidcVerifier:
    def __init__(
        self,
        issuer: str,
        audience: str,
        fetch: Fetch = https_fetch,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._issuer = issuer.rstrip("/")
        self._audience = audience
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, tuple[int, int]] = {}
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def verify(self, id_token: str, *, now: int) -> Account:
        try:
            header, claims, signed, signature = split_token(id_token)
        except ValueError as error:
            raise InvalidIdToken("the ID token is not a JWT") from error
        if header.get("alg") != "RS256":
            raise InvalidIdToken("the ID token must be signed with RS256")
        kid = header.get("kid")
        key = self._key(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidIdToken("the ID token's key is not one of the provider's")
        if not rsa_sha256_verify(*key, signed, signature):
            raise InvalidIdToken("the ID token's signature does not match")
        self._check_claims(claims, now)
        name = next(
            (claims[c] for c in ("name", "preferred_username", "cognito:username") if claims.get(c)), None
        )
        return Account(
            issuer=self._issuer, subject=claims["sub"], name=name if isinstance(name, str) else None
        )

    def _check_claims(self, claims: dict[str, Any], now: int) -> None:
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        expires = claims.get("exp")
        if claims.get("iss") != self._issuer:
            raise InvalidIdToken("the ID token is from another issuer")
        if self._audience not in audiences:
            raise InvalidIdToken("the ID token is for another audience")
        if not isinstance(expires, int | float) or expires + LEEWAY_SECONDS < now:
            raise InvalidIdToken("the ID token has expired")
        if claims.get("token_use", "id") != "id":  # Amazon Cognito: an access token is not an ID token
            raise InvalidIdToken("the token is not an ID token")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise InvalidIdToken("the ID token names no subject")

    def _key(self, kid: str) -> tuple[int, int] | None:
        with self._lock:
            age = None if self._fetched_at is None else self._clock() - self._fetched_at
            stale = age is None or age >= KEYS_TTL_SECONDS
            if stale or (kid not in self._keys and age is not None and age >= REFETCH_SECONDS):
                self._keys = self._fetch_keys()
                self._fetched_at = self._clock()
            return self._keys.get(kid)

    def _fetch_keys(self) -> dict[str, tuple[int, int]]:
        try:
            discovery = json.loads(self._fetch(f"{self._issuer}/.well-known/openid-configuration"))
            document = json.loads(self._fetch(discovery["jwks_uri"]))
            return {
                key["kid"]: (
                    int.from_bytes(b64decode(key["n"]), "big"),
                    int.from_bytes(b64decode(key["e"]), "big"),
                )
                for key in document["keys"]
                if key.get("kty") == "RSA" and key.get("use", "sig") == "sig" and "kid" in key
            }
        except (OSError, ValueError, KeyError, TypeError) as error:  # network, JSON, shape
            if self._keys:
                return self._keys  # keep verifying with the keys we had
            raise StoreError("JWKS", type(error).__name__) from error

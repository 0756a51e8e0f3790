"""OpenID Connect ID tokens, verified in pure Python against a provider's published keys (the keys
and tokens here are made with the `cryptography` package, a test-only dependency of moto)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from chat.oidc import InvalidIdToken, OidcVerifier, rsa_sha256_verify
from chat.ports import StoreError

ISSUER = "https://cognito-idp.eu-west-2.amazonaws.com/eu-west-2_pool"
AUDIENCE = "app-client-id"
NOW = 1_790_000_000
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    n = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64(n), "e": b64(b"\x01\x00\x01")}


def id_token(key: rsa.RSAPrivateKey = KEY, kid: str = "key-1", alg: str = "RS256", **claims: Any) -> str:
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-123",
        "exp": NOW + 600,
        "token_use": "id",
        "name": "Ada",
    }
    body.update(claims)
    signed = f"{b64(json.dumps({'alg': alg, 'kid': kid}).encode())}.{b64(json.dumps(body).encode())}"
    signature = key.sign(signed.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signed}.{b64(signature)}"


class Provider:
    """The issuer's discovery document and key set, counting fetches."""

    def __init__(self, keys: list[dict[str, str]]) -> None:
        self.keys = keys
        self.fetched: list[str] = []
        self.down = False

    def __call__(self, url: str) -> bytes:
        self.fetched.append(url)
        if self.down:
            raise OSError("provider unreachable")
        if url == f"{ISSUER}/.well-known/openid-configuration":
            return json.dumps({"issuer": ISSUER, "jwks_uri": f"{ISSUER}/.well-known/jwks.json"}).encode()
        assert url == f"{ISSUER}/.well-known/jwks.json"
        return json.dumps({"keys": self.keys}).encode()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def verifier(provider: Provider, clock: Clock | None = None) -> OidcVerifier:
    return OidcVerifier(ISSUER, AUDIENCE, provider, clock=clock or Clock())


def test_a_providers_id_token_names_its_account() -> None:
    account = verifier(Provider([jwk(KEY, "key-1")])).verify(id_token(), now=NOW)
    assert (account.issuer, account.subject, account.name) == (ISSUER, "user-123", "Ada")


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (id_token(OTHER_KEY), "signature"),
        (id_token(kid="key-9"), "key"),
        (id_token(alg="HS256"), "RS256"),
        (id_token(iss="https://evil.example"), "issuer"),
        (id_token(aud="another-client"), "audience"),
        (id_token(exp=NOW - 600), "expired"),
        (id_token(token_use="access"), "ID token"),
        (id_token(sub=""), "subject"),
        ("not.a.jwt", "JWT"),
        ("", "JWT"),
    ],
)
def test_a_token_the_provider_did_not_issue_for_us_is_refused(token: str, reason: str) -> None:
    with pytest.raises(InvalidIdToken, match=reason) as caught:
        verifier(Provider([jwk(KEY, "key-1")])).verify(token, now=NOW)
    assert (caught.value.code, caught.value.status) == ("invalid_id_token", 401)


def test_the_keys_are_cached_and_refetched_for_a_new_key_id_at_most_once_a_minute() -> None:
    provider, clock = Provider([jwk(KEY, "key-1")]), Clock()
    check = verifier(provider, clock)
    for _ in range(3):
        check.verify(id_token(), now=NOW)
    assert len(provider.fetched) == 2  # discovery + key set, once
    provider.keys.append(jwk(OTHER_KEY, "key-2"))  # the provider rotates
    with pytest.raises(InvalidIdToken):
        check.verify(id_token(OTHER_KEY, kid="key-2"), now=NOW)  # too soon to refetch
    clock.now = 61
    assert check.verify(id_token(OTHER_KEY, kid="key-2"), now=NOW).subject == "user-123"
    assert len(provider.fetched) == 4


def test_a_provider_outage_keeps_the_cached_keys_and_fails_as_unavailable_without_them() -> None:
    provider, clock = Provider([jwk(KEY, "key-1")]), Clock()
    check = verifier(provider, clock)
    check.verify(id_token(), now=NOW)
    provider.down = True
    clock.now = 7200  # the cache is stale and the provider is down: keep verifying
    assert check.verify(id_token(), now=NOW).subject == "user-123"
    with pytest.raises(StoreError):
        verifier(provider).verify(id_token(), now=NOW)


def test_rsa_verification_refuses_short_keys_and_out_of_range_signatures() -> None:
    numbers = KEY.public_key().public_numbers()
    message = b"payload"
    good = KEY.sign(message, padding.PKCS1v15(), hashes.SHA256())
    assert rsa_sha256_verify(numbers.n, numbers.e, message, good)
    assert not rsa_sha256_verify(numbers.n, numbers.e, b"other", good)
    assert not rsa_sha256_verify(numbers.n, numbers.e, message, numbers.n.to_bytes(256, "big"))
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the weak key under test
    weak = small.public_key().public_numbers()
    assert not rsa_sha256_verify(
        weak.n, weak.e, message, small.sign(message, padding.PKCS1v15(), hashes.SHA256())
    )

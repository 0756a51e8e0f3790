"""OpenID Connect sign-in against a local provider (tests/oidc_provider.py): a discovery document
and a key set on loopback, fetched by the chat's own fetcher (without its HTTPS requirement, the
one thing a loopback provider cannot meet). Every token the provider did not issue as an ID token
for the chat, recently, is `401 invalid_id_token`; every answer of the provider that is not a
discovery document and a key set is `503 unavailable`, never a 500."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat import composition
from chat.errors import StoreError
from chat.handlers import http_api
from chat.oidc import InvalidIdToken, OidcVerifier, fetch_document
from localcloud.lambda_.context import LambdaContext
from tests.integration.helpers import http
from tests.oidc_provider import AUDIENCE, Answer, OidcProvider, b64, jwk, new_key, running

loopback_fetch = functools.partial(fetch_document, require_https=False)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def provider() -> Iterator[OidcProvider]:
    with running() as serving:
        yield serving


def verifier(provider: OidcProvider, issuer: str | None = None, clock: Clock | None = None) -> OidcVerifier:
    return OidcVerifier(issuer or provider.base, AUDIENCE, loopback_fetch, clock=clock or Clock())


def exchange(provider: OidcProvider, token: str, nonce: str | None = None) -> Any:
    return verifier(provider).verify(token, now=int(time.time()), nonce=nonce)


def test_given_a_fresh_id_token_when_exchanged_then_it_names_the_providers_account(
    provider: OidcProvider,
) -> None:
    account = exchange(provider, provider.id_token(nonce="n-0S6"), nonce="n-0S6")
    assert (account.issuer, account.subject, account.name) == (provider.issuer, "user-123", "Ada")


WEAK_EXPONENT = "exponent 1"


def forged_with_exponent_one(provider: OidcProvider) -> str:
    """With e = 1 a signature is its own encoded message: anyone can write one for any claims."""
    import hashlib

    provider.keys.append({**jwk(provider.key, "weak"), "e": b64(b"\x01")})
    header = {"alg": "RS256", "kid": "weak"}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(provider.claims()).encode())}"
    digest = (
        bytes.fromhex("3031300d060960864801650304020105000420")
        + hashlib.sha256(signing_input.encode()).digest()
    )
    encoded = b"\x00\x01" + b"\xff" * (256 - len(digest) - 3) + b"\x00" + digest
    return f"{signing_input}.{b64(encoded)}"


def with_1024_bit_key(provider: OidcProvider) -> str:
    small = new_key(1024)
    provider.keys.append(jwk(small, "small"))
    return provider.id_token(key=small, header={"kid": "small"})


NOW = int(time.time())
REFUSED: dict[str, Callable[[OidcProvider], str]] = {
    "exp NaN": lambda p: p.id_token(payload=json.dumps(p.claims(exp=float("nan"))).encode()),
    "exp Infinity": lambda p: p.id_token(payload=json.dumps(p.claims(exp=float("inf"))).encode()),
    "exp 1e400": lambda p: p.id_token(
        payload=json.dumps(p.claims(exp=0)).replace('"exp": 0', '"exp": 1e400').encode()
    ),
    "exp a string": lambda p: p.id_token(exp=str(NOW + 600)),
    "exp true": lambda p: p.id_token(exp=True),
    "expired": lambda p: p.id_token(exp=NOW - 120),
    "no exp": lambda p: p.id_token(exp=None),
    "nbf in an hour": lambda p: p.id_token(nbf=NOW + 3600),
    "iat in an hour": lambda p: p.id_token(iat=NOW + 3600),
    "no iat": lambda p: p.id_token(iat=None),
    "iat an hour ago (a replay)": lambda p: p.id_token(iat=NOW - 3600, exp=NOW + 3600),
    "auth_time in an hour": lambda p: p.id_token(auth_time=NOW + 3600),
    "an access token (typ at+jwt)": lambda p: p.id_token(header={"typ": "at+jwt"}),
    "an access token (typ application/at+jwt)": lambda p: p.id_token(header={"typ": "application/at+jwt"}),
    "a logout token": lambda p: p.id_token(header={"typ": "logout+jwt"}),
    "a Cognito access token": lambda p: p.id_token(token_use="access"),
    "azp another client": lambda p: p.id_token(azp="another-client"),
    "two audiences, no azp": lambda p: p.id_token(aud=[AUDIENCE, "another-client"]),
    "two audiences, azp another": lambda p: p.id_token(aud=[AUDIENCE, "x"], azp="x"),
    "another audience": lambda p: p.id_token(aud="another-client"),
    "another issuer": lambda p: p.id_token(iss="https://evil.example"),
    "the issuer spelt with a slash": lambda p: p.id_token(iss=p.issuer + "/"),
    "no subject": lambda p: p.id_token(sub=""),
    "signed by another key": lambda p: p.id_token(key=new_key()),
    "an unknown key id": lambda p: p.id_token(header={"kid": "key-9"}),
    "alg HS256": lambda p: p.id_token(header={"alg": "HS256"}),
    "alg none": lambda p: p.id_token(header={"alg": "none"}).rsplit(".", 1)[0] + ".",
    "a key with exponent 1": forged_with_exponent_one,
    "a 1024-bit key": with_1024_bit_key,
    "not a JWT": lambda p: "not.a.jwt",
    "empty": lambda p: "",
    "a nested header": lambda p: b64(b"[" * 100_000) + ".e30.c2ln",
}


@pytest.mark.parametrize("case", REFUSED)
def test_given_a_token_that_is_not_a_fresh_id_token_for_the_chat_when_exchanged_then_it_is_refused(
    provider: OidcProvider, case: str
) -> None:
    token = REFUSED[case](provider)
    with pytest.raises(InvalidIdToken) as caught:
        exchange(provider, token)
    assert (caught.value.code, caught.value.status) == ("invalid_id_token", 401)


@pytest.mark.parametrize(("sent", "claimed"), [("n-1", "n-2"), ("n-1", None), ("", "n-1")])
def test_given_a_nonce_when_the_token_carries_another_or_none_then_it_is_refused(
    provider: OidcProvider, sent: str, claimed: str | None
) -> None:
    with pytest.raises(InvalidIdToken, match="nonce"):
        exchange(provider, provider.id_token(nonce=claimed), nonce=sent)


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[OidcProvider, OidcVerifier]]:
    with running() as serving:
        yield serving, verifier(serving)


@given(
    claim=st.sampled_from(["exp", "iat", "nbf", "auth_time"]),
    value=st.one_of(
        st.text(max_size=12),
        st.booleans(),
        st.none(),
        st.lists(st.integers(), max_size=2),
        st.sampled_from([float("nan"), float("inf"), float("-inf")]),
    ),
)
def test_property_a_time_claim_that_is_not_a_finite_number_is_refused(
    shared: tuple[OidcProvider, OidcVerifier], claim: str, value: Any
) -> None:
    provider, check = shared
    claims = {**provider.claims(), claim: value}
    with pytest.raises(InvalidIdToken, match=rf"'{claim}'|not a JSON number"):
        check.verify(provider.id_token(payload=json.dumps(claims).encode()), now=int(time.time()))


@pytest.mark.parametrize(
    ("configured_slash", "discovery_slash"), [(True, False), (False, True), (True, True)]
)
def test_given_an_issuer_with_or_without_its_trailing_slash_then_the_discovery_document_decides(
    configured_slash: bool, discovery_slash: bool
) -> None:
    with running(trailing_slash=discovery_slash) as provider:
        configured = provider.base + ("/" if configured_slash else "")
        check = verifier(provider, issuer=configured)
        account = check.verify(provider.id_token(), now=int(time.time()))
        assert account.issuer == provider.issuer
        with pytest.raises(InvalidIdToken):  # the token must say exactly what discovery says
            check.verify(provider.id_token(iss=provider.base + ("" if discovery_slash else "/")), now=NOW)


MALFORMED: dict[str, Callable[[OidcProvider], None]] = {
    "discovery names another issuer": lambda p: p.answers.update(
        {
            p.discovery_path: Answer(
                body=json.dumps(
                    {"issuer": "https://evil.example", "jwks_uri": p.base + "/jwks.json"}
                ).encode()
            )
        }
    ),
    "discovery not JSON": lambda p: p.answers.update({p.discovery_path: Answer(body=b"<html>")}),
    "discovery a list": lambda p: p.answers.update({p.discovery_path: Answer(body=b"[]")}),
    "discovery without jwks_uri": lambda p: p.answers.update(
        {p.discovery_path: Answer(body=json.dumps({"issuer": p.issuer}).encode())}
    ),
    "discovery jwks_uri a number": lambda p: p.answers.update(
        {p.discovery_path: Answer(body=json.dumps({"issuer": p.issuer, "jwks_uri": 7}).encode())}
    ),
    "key set not JSON": lambda p: p.answers.update({p.jwks_path: Answer(body=b"{keys")}),
    "key set keys not a list": lambda p: p.answers.update({p.jwks_path: Answer(body=b'{"keys": {}}')}),
    "key set NaN": lambda p: p.answers.update({p.jwks_path: Answer(body=b'{"keys": NaN}')}),
    "key set nested 100,000 deep": lambda p: p.answers.update({p.jwks_path: Answer(body=b"[" * 100_000)}),
    "key set over 1 MB": lambda p: p.answers.update(
        {p.jwks_path: Answer(body=json.dumps({"keys": p.keys, "pad": "x" * 1_100_000}).encode())}
    ),
    "key set 500": lambda p: p.answers.update({p.jwks_path: Answer(status=500, body=b"{}")}),
    "discovery redirected": lambda p: p.answers.update(
        {p.discovery_path: Answer(status=302, headers={"Location": p.base + "/elsewhere"})}
    ),
    "key set redirected": lambda p: p.answers.update(
        {p.jwks_path: Answer(status=301, headers={"Location": "http://127.0.0.1:9/jwks.json"})}
    ),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_given_a_provider_answer_that_is_not_a_discovery_document_and_key_set_then_sign_in_is_unavailable(
    provider: OidcProvider, case: str
) -> None:
    MALFORMED[case](provider)
    with pytest.raises(StoreError):
        exchange(provider, provider.id_token())


def test_the_production_fetcher_refuses_anything_but_https(provider: OidcProvider) -> None:
    with pytest.raises(StoreError):
        OidcVerifier(provider.base, AUDIENCE).verify(provider.id_token(), now=NOW)
    assert provider.requests == []


def test_given_cached_keys_then_a_new_key_id_refetches_at_most_once_a_minute(provider: OidcProvider) -> None:
    clock = Clock()
    check = verifier(provider, clock=clock)
    for _ in range(3):
        check.verify(provider.id_token(), now=int(time.time()))
    assert len(provider.requests) == 2  # discovery + key set, once
    rotated = new_key()
    provider.keys.append(jwk(rotated, "key-2"))
    with pytest.raises(InvalidIdToken):
        check.verify(provider.id_token(key=rotated, header={"kid": "key-2"}), now=int(time.time()))
    clock.now = 61
    check.verify(provider.id_token(key=rotated, header={"kid": "key-2"}), now=int(time.time()))
    assert len(provider.requests) == 4


def test_given_cached_keys_when_the_provider_then_answers_badly_then_the_cached_keys_still_verify(
    provider: OidcProvider,
) -> None:
    clock = Clock()
    check = verifier(provider, clock=clock)
    check.verify(provider.id_token(), now=int(time.time()))
    provider.answers[provider.jwks_path] = Answer(body=b"not json")
    clock.now = 7200  # the cache is stale and the provider answers nonsense: keep verifying
    assert check.verify(provider.id_token(), now=int(time.time())).subject == "user-123"


# Through the HTTP API function: POST /session as a client sends it.


@pytest.fixture
def oidc_stack(
    in_region: Callable[..., None], provider: OidcProvider, monkeypatch: pytest.MonkeyPatch
) -> OidcProvider:
    in_region("us-east-1")
    # The stack's verifier, fetching from the loopback provider (the template's needs HTTPS).
    monkeypatch.setattr(composition, "accounts", functools.cache(lambda: verifier(provider)))
    return provider


def sign_in(context: LambdaContext, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = http_api.handler(
        http("POST", "/session", route="POST /session", body=json.dumps(body).encode()), context
    )
    return response["statusCode"], json.loads(response["body"])


def test_given_the_http_api_when_an_id_token_is_exchanged_then_every_refusal_has_the_contracts_shape(
    oidc_stack: OidcProvider, context: LambdaContext
) -> None:
    provider = oidc_stack
    status, answer = sign_in(context, {"idToken": provider.id_token(nonce="n-1"), "nonce": "n-1"})
    assert status == 201
    assert answer["user"]["id"].startswith("o_")
    replayed = provider.id_token(iat=NOW - 3600, exp=NOW + 3600)
    for body in ({"idToken": replayed}, {"idToken": provider.id_token(nonce="n-1"), "nonce": "n-2"}):
        status, answer = sign_in(context, body)
        assert (status, answer["error"]["code"]) == (401, "invalid_id_token")
    status, answer = sign_in(context, {"idToken": provider.id_token(), "nonce": 7})
    assert (status, answer["error"]["code"]) == (400, "invalid_id_token")
    provider.answers[provider.jwks_path] = Answer(body=b'{"keys": NaN}')
    composition.accounts.cache_clear()  # a new container, with no keys cached
    status, answer = sign_in(context, {"idToken": provider.id_token()})
    assert (status, answer["error"]["code"]) == (503, "unavailable")

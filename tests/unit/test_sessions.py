"""Session tokens: HS256 compact JWTs that only our keys can make, for a limited time."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat import sessions
from chat.sessions import Session, SigningKeys, Unauthorized, sign, verify

NOW = 1_790_000_000
KEYS = SigningKeys({"k1": b"a" * 48}, "k1")
ROTATED = SigningKeys({"k1": b"a" * 48, "k2": b"b" * 48}, "k2")
ADA = Session(user_id="g_" + "A" * 26, name="Ada", expires_at=NOW + 3600)


def segment(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def refused(token: str, keys: SigningKeys = KEYS, now: int = NOW) -> str:
    with pytest.raises(Unauthorized) as caught:
        verify(token, keys, now=now)
    assert caught.value.code == "unauthorized"
    assert caught.value.status == 401
    return caught.value.message


def test_a_session_verifies_as_the_user_it_was_made_for() -> None:
    assert verify(sign(ADA, KEYS, now=NOW), KEYS, now=NOW + 10) == ADA


def test_a_tampered_claim_is_refused() -> None:
    header, claims, signature = sign(ADA, KEYS, now=NOW).split(".")
    forged = json.loads(base64.urlsafe_b64decode(claims + "=="))
    forged["sub"] = "g_" + "B" * 26
    assert "signature" in refused(f"{header}.{segment(forged)}.{signature}")


def test_a_tampered_signature_is_refused() -> None:
    token = sign(ADA, KEYS, now=NOW)
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    refused(flipped)


def test_a_token_signed_with_another_key_is_refused() -> None:
    other = SigningKeys({"k1": b"z" * 48}, "k1")
    refused(sign(ADA, other, now=NOW))


def test_an_expired_session_is_refused_after_the_leeway() -> None:
    token = sign(ADA, KEYS, now=NOW)
    assert verify(token, KEYS, now=ADA.expires_at + sessions.LEEWAY_SECONDS) == ADA
    assert "expired" in refused(token, now=ADA.expires_at + sessions.LEEWAY_SECONDS + 1)


def test_alg_none_is_refused_even_without_a_signature() -> None:
    claims = {"iss": "resilient-chat", "sub": ADA.user_id, "name": "Ada", "exp": NOW + 60, "kid": "k1"}
    refused(f"{segment({'alg': 'none', 'kid': 'k1'})}.{segment(claims)}.")
    assert "HS256" in refused(f"{segment({'alg': 'none', 'kid': 'k1'})}.{segment(claims)}.AAAA")


def test_a_signed_token_claiming_another_algorithm_is_refused() -> None:
    _, claims, signature = sign(ADA, KEYS, now=NOW).split(".")
    assert "HS256" in refused(f"{segment({'alg': 'HS512', 'kid': 'k1'})}.{claims}.{signature}")


def test_an_unknown_key_id_is_refused() -> None:
    stranger = SigningKeys({"k9": b"a" * 48}, "k9")
    assert "key" in refused(sign(ADA, stranger, now=NOW))


def test_after_a_rotation_old_sessions_still_verify_and_new_ones_use_the_new_key() -> None:
    old = sign(ADA, KEYS, now=NOW)
    assert verify(old, ROTATED, now=NOW) == ADA
    new = sign(ADA, ROTATED, now=NOW)
    assert json.loads(base64.urlsafe_b64decode(new.split(".")[0] + "=="))["kid"] == "k2"
    refused(new, keys=KEYS)  # the new key is unknown to a verifier that was not rotated


@pytest.mark.parametrize(
    "token",
    ["", "junk", "a.b", "a.b.c", "..", "a.b.c.d", "é.é.é", "x" * 5000, segment({"alg": "HS256"}) + ".e30."],
)
def test_garbage_is_refused_as_unauthorized(token: str) -> None:
    refused(token)


@given(st.text(max_size=300))
def test_any_string_that_is_not_our_session_is_refused_as_unauthorized(token: str) -> None:
    refused(token)


def test_a_deeply_nested_header_is_refused_not_a_crash() -> None:
    nested = base64.urlsafe_b64encode(b"[" * 2000).decode().rstrip("=")
    refused(f"{nested}.e30.AA")


def test_the_secret_cloudformation_generates_and_a_rotated_one_both_parse() -> None:
    generated = SigningKeys.from_secret(json.dumps({"kid": "k1", "secret": "s" * 64}))
    assert generated.current == "k1"
    rotated = SigningKeys.from_secret(
        json.dumps({"keys": [{"kid": "k1", "secret": "s" * 64}, {"kid": "k2", "secret": "t" * 64}]})
    )
    assert (rotated.current, sorted(rotated.keys)) == ("k2", ["k1", "k2"])
    with pytest.raises(ValueError, match="32"):
        SigningKeys.from_secret(json.dumps({"kid": "k1", "secret": "short"}))


def test_guest_ids_are_random_and_account_ids_are_stable_per_issuer_and_subject() -> None:
    guests = {sessions.new_guest_id() for _ in range(100)}
    assert len(guests) == 100
    assert all(g.startswith("g_") and len(g) == 28 for g in guests)
    one = sessions.account_user_id("https://issuer.example", "sub-1")
    assert one == sessions.account_user_id("https://issuer.example", "sub-1")
    assert one != sessions.account_user_id("https://other.example", "sub-1")
    assert one.startswith("o_")


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None), (None, None)],
)
def test_the_bearer_token_is_read_from_the_authorization_header(
    header: str | None, token: str | None
) -> None:
    assert sessions.bearer_token(header) == token

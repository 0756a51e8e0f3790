"""Session tokens: HS256 compact JWTs that only our keys can make, for a limited time, that end at
their session's maximum age however often they are renewed."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat import sessions
from chat.errors import Unauthorized
from chat.sessions import Session, SigningKeys, sign, verify

NOW = 1_790_000_000
KEYS = SigningKeys({"k1": b"a" * 48}, "k1")
ROTATED = SigningKeys({"k1": b"a" * 48, "k2": b"b" * 48}, "k2")
MAX_AGE = 86_400
ADA = Session(
    user_id="g_" + "A" * 26, name="Ada", expires_at=NOW + 3600, session_id="S" * 26, started_at=NOW - 60
)


def segment(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def verified(token: str, keys: SigningKeys = KEYS, now: int = NOW) -> Session:
    return verify(token, keys, now=now, max_age_seconds=MAX_AGE)


def refused(token: str, keys: SigningKeys = KEYS, now: int = NOW, max_age: int = MAX_AGE) -> str:
    with pytest.raises(Unauthorized) as caught:
        verify(token, keys, now=now, max_age_seconds=max_age)
    assert caught.value.code == "unauthorized"
    assert caught.value.status == 401
    return caught.value.message


def test_a_session_verifies_as_the_user_it_was_made_for() -> None:
    assert verified(sign(ADA, KEYS, now=NOW), now=NOW + 10) == ADA


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
    assert verified(token, now=ADA.expires_at + sessions.LEEWAY_SECONDS) == ADA
    assert "expired" in refused(token, now=ADA.expires_at + sessions.LEEWAY_SECONDS + 1)


def test_alg_none_is_refused_even_without_a_signature() -> None:
    claims = {
        "iss": "resilient-chat",
        "sub": ADA.user_id,
        "name": "Ada",
        "exp": NOW + 60,
        "sid": "S",
        "auth_time": NOW,
    }
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
    assert verified(old, ROTATED) == ADA
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


def test_a_session_carries_its_id_and_its_start_as_sid_and_auth_time() -> None:
    _, claims, _ = sign(ADA, KEYS, now=NOW).split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=="))
    assert (decoded["sid"], decoded["auth_time"], decoded["iat"]) == (ADA.session_id, ADA.started_at, NOW)


def test_given_a_session_older_than_the_maximum_age_when_verified_then_it_is_refused_though_unexpired() -> (
    None
):
    # given a token that is itself current, of a session that began long ago
    old = Session(ADA.user_id, "Ada", NOW + 3600, session_id="S" * 26, started_at=NOW - MAX_AGE - 1)
    # then its age, not its expiry, refuses it
    assert "sign in again" in refused(sign(old, KEYS, now=NOW))
    assert verified(sign(old, KEYS, now=NOW), now=NOW - 1).session_id == "S" * 26


@pytest.mark.parametrize("missing", ["sid", "auth_time", "exp", "sub", "iss"])
def test_a_token_without_a_session_claim_is_refused(missing: str) -> None:
    import jwt

    claims = {"iss": "resilient-chat", "sub": ADA.user_id, "name": "Ada", "exp": NOW + 60}
    claims |= {"sid": "S" * 26, "auth_time": NOW, "iat": NOW}
    del claims[missing]
    refused(jwt.encode(claims, KEYS.keys["k1"], algorithm="HS256", headers={"kid": "k1"}))


@pytest.mark.parametrize(
    "bad", [{"auth_time": "1790000000"}, {"auth_time": True}, {"exp": 1.5e9}, {"sid": ""}]
)
def test_a_token_whose_session_claims_have_the_wrong_type_is_refused(bad: dict[str, object]) -> None:
    import jwt

    claims = {"iss": "resilient-chat", "sub": ADA.user_id, "name": "Ada", "exp": NOW + 60}
    claims |= {"sid": "S" * 26, "auth_time": NOW, "iat": NOW} | bad
    refused(jwt.encode(claims, KEYS.keys["k1"], algorithm="HS256", headers={"kid": "k1"}))


BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def test_exactly_one_base64url_spelling_of_the_signature_verifies() -> None:
    # An HMAC-SHA256 is 32 bytes: 43 characters whose last carries 2 unused bits, so 4 spellings
    # decode to the same bytes. Only the canonical one (unused bits zero) is accepted.
    token = sign(ADA, KEYS, now=NOW)
    first = BASE64URL.index(token[-1]) & ~3
    spellings = [token[:-1] + BASE64URL[first + bits] for bits in range(4)]
    assert token in spellings
    accepted = []
    for spelling in spellings:
        try:
            verified(spelling)
            accepted.append(spelling)
        except Unauthorized:
            pass
    assert accepted == [token]


@pytest.mark.parametrize("suffix", ["=", "==", " ", "\n", "*"])
def test_a_signature_with_padding_or_stray_characters_is_refused(suffix: str) -> None:
    refused(sign(ADA, KEYS, now=NOW) + suffix)


@given(st.integers(min_value=0, max_value=MAX_AGE * 2), st.integers(min_value=0, max_value=7200))
def test_a_token_verifies_exactly_while_its_session_is_young_enough_and_unexpired(
    age: int, left: int
) -> None:
    session = Session(ADA.user_id, "Ada", NOW + left, session_id="S" * 26, started_at=NOW - age)
    token = sign(session, KEYS, now=NOW)
    later = NOW + 1
    valid = later - session.started_at <= MAX_AGE and session.expires_at + sessions.LEEWAY_SECONDS >= later
    if valid:
        assert verified(token, now=later) == session
    else:
        refused(token, now=later)


def test_new_session_ids_are_random_26_character_crockford_strings() -> None:
    ids = {sessions.new_session_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 26 and set(i) <= set(sessions.ulid.ALPHABET) for i in ids)

"""Sessions that end: renewal keeps a session's id and start and stops at its maximum age; a
sign-out refuses the session (every token renewed from it) from then on."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chat import sessions
from chat.errors import StoreError, Unauthorized
from chat.service import authenticate, sign_in, sign_out
from chat.sessions import SigningKeys
from chat.settings import Settings
from tests.unit.fakes import FakeKeySource, FakeSessionRevocations

NOW = 1_790_000_000
KEYS = FakeKeySource(SigningKeys({"k1": b"k" * 40}, "k1"))
SETTINGS = Settings(region="us-east-1", messages_table="m", connections_table="c")


def guest(
    revocations: FakeSessionRevocations, now: int = NOW, settings: Settings = SETTINGS
) -> dict[str, Any]:
    return sign_in(
        {"name": "Ada"},
        authorization=None,
        keys=KEYS,
        accounts=None,
        revocations=revocations,
        settings=settings,
        now=now,
    )


def renew(
    token: str, revocations: FakeSessionRevocations, now: int, settings: Settings = SETTINGS
) -> dict[str, Any]:
    return sign_in(
        {},
        authorization=f"Bearer {token}",
        keys=KEYS,
        accounts=None,
        revocations=revocations,
        settings=settings,
        now=now,
    )


def claims(token: str) -> sessions.Session:
    return sessions.verify(token, KEYS.signing_keys(), now=NOW, max_age_seconds=10**9)


def use(token: str, revocations: FakeSessionRevocations, now: int = NOW) -> None:
    authenticate(f"Bearer {token}", KEYS, revocations=revocations, settings=SETTINGS, now=now)


def test_a_renewal_keeps_the_session_id_and_its_start() -> None:
    revocations = FakeSessionRevocations()
    first = guest(revocations)
    renewed = renew(first["token"], revocations, now=NOW + 3000)
    one, two = claims(first["token"]), claims(renewed["token"])
    assert (two.session_id, two.started_at, two.user_id) == (one.session_id, NOW, one.user_id)
    assert two.expires_at == NOW + 3000 + SETTINGS.session_ttl_seconds


def test_two_sign_ins_are_two_sessions() -> None:
    revocations = FakeSessionRevocations()
    assert claims(guest(revocations)["token"]).session_id != claims(guest(revocations)["token"]).session_id


def test_given_renewals_all_day_when_the_maximum_age_passes_then_renewal_is_refused() -> None:
    # given a session renewed every 50 minutes
    revocations = FakeSessionRevocations()
    token, now = guest(revocations)["token"], NOW
    while now + 3000 - NOW <= SETTINGS.max_session_age_seconds:
        now += 3000
        token = renew(token, revocations, now=now)["token"]
        # then no token outlives the session's maximum age
        assert claims(token).expires_at <= NOW + SETTINGS.max_session_age_seconds
    # when the next renewal comes after the maximum age
    with pytest.raises(Unauthorized) as caught:
        renew(token, revocations, now=NOW + SETTINGS.max_session_age_seconds + 1)
    # then it is refused: sign in again
    assert "sign in again" in caught.value.message


@given(st.integers(min_value=60, max_value=200_000), st.integers(min_value=300, max_value=86_400))
def test_no_renewed_token_expires_after_the_sessions_maximum_age(max_age: int, ttl: int) -> None:
    settings = Settings("r", "m", "c", session_ttl_seconds=ttl, max_session_age_seconds=max_age)
    revocations = FakeSessionRevocations()
    first = guest(revocations, settings=settings)
    later = NOW + min(max_age, ttl) // 2  # while the first token is current
    renewed = renew(first["token"], revocations, now=later, settings=settings)
    assert claims(renewed["token"]).expires_at == min(later + ttl, NOW + max_age)


def test_given_a_sign_out_then_the_token_and_every_token_renewed_from_it_are_refused() -> None:
    # given a session, renewed once before the sign-out
    revocations = FakeSessionRevocations()
    first = guest(revocations)
    renewed = renew(first["token"], revocations, now=NOW + 10)
    other = guest(revocations)  # another session
    # when the renewed token signs out
    ended = sign_out(
        f"Bearer {renewed['token']}", KEYS, revocations=revocations, settings=SETTINGS, now=NOW + 20
    )
    # then both tokens are refused, for rooms and for renewal alike, and the other session is not
    for token in (first["token"], renewed["token"]):
        with pytest.raises(Unauthorized, match="signed out"):
            use(token, revocations, now=NOW + 21)
        with pytest.raises(Unauthorized, match="signed out"):
            renew(token, revocations, now=NOW + 21)
    use(other["token"], revocations, now=NOW + 21)
    # and the record lasts as long as the session could have: its maximum age and the leeway
    assert revocations.revoked == {
        ended.session_id: NOW + SETTINGS.max_session_age_seconds + sessions.LEEWAY_SECONDS
    }


def test_a_sign_out_needs_a_current_session() -> None:
    revocations = FakeSessionRevocations()
    for authorization in (None, "Bearer junk", "Basic YWRhOg=="):
        with pytest.raises(Unauthorized):
            sign_out(authorization, KEYS, revocations=revocations, settings=SETTINGS, now=NOW)
    assert revocations.revoked == {}


def test_when_the_sign_out_records_cannot_be_read_then_no_session_is_taken_for_valid() -> None:
    revocations = FakeSessionRevocations()
    token = guest(revocations)["token"]
    revocations.fail = StoreError("GetItem", "ServiceUnavailable")
    with pytest.raises(StoreError):  # 503 unavailable, never a pass
        use(token, revocations)


def test_a_sign_outs_stream_image_names_its_user_and_a_messages_image_names_none() -> None:
    from chat.revocations import revocation_key, signed_out_user

    sign_out_image = {**revocation_key("S" * 26), "userId": {"S": "g_ADA"}, "expiresAt": {"N": "1"}}
    assert signed_out_user(sign_out_image) == "g_ADA"
    message = {"pk": {"S": "room#lobby"}, "sk": {"S": "01J#g_ADA"}, "userId": {"S": "g_ADA"}}
    assert signed_out_user(message) is None
    assert signed_out_user({**message, "sk": {"S": "revoked"}}) is None  # not the sessions' partition
    assert signed_out_user(None) is None

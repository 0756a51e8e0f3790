"""The RS256 check the chat registers with PyJWT, and which of a provider's keys it will use (the
claim rules are tested against a local provider: tests/integration/test_oidc.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from jwt.utils import base64url_decode

from chat.oidc import rsa_key, rsa_sha256_verify
from tests.oidc_provider import b64, jwk, new_key, signed

KEY = new_key()
NUMBERS = KEY.public_key().public_numbers()
MESSAGE = b"header.payload"
GOOD = signed({"alg": "RS256"}, b"{}", KEY)


def test_a_signature_verifies_only_for_its_message_and_key() -> None:
    signing_input, signature = GOOD.rsplit(".", 1)
    raw = base64url_decode(signature)
    assert rsa_sha256_verify(NUMBERS.n, NUMBERS.e, signing_input.encode(), raw)
    assert not rsa_sha256_verify(NUMBERS.n, NUMBERS.e, b"other", raw)
    assert not rsa_sha256_verify(NUMBERS.n, NUMBERS.e, signing_input.encode(), NUMBERS.n.to_bytes(256, "big"))
    other = new_key().public_key().public_numbers()
    assert not rsa_sha256_verify(other.n, other.e, signing_input.encode(), raw)


def test_a_providers_2048_bit_signing_key_with_exponent_65537_is_usable() -> None:
    key = rsa_key(jwk(KEY, "key-1"))
    assert key is not None
    assert (key.modulus, key.exponent) == (NUMBERS.n, 65537)


@given(exponent=st.integers(min_value=0, max_value=2**17).filter(lambda e: e < 3 or e % 2 == 0))
def test_property_a_key_whose_exponent_is_even_or_under_3_is_never_used(exponent: int) -> None:
    size = max(1, (exponent.bit_length() + 7) // 8)
    assert rsa_key({**jwk(KEY, "weak"), "e": b64(exponent.to_bytes(size, "big"))}) is None


def test_keys_that_are_not_rs256_signing_keys_of_2048_bits_or_more_are_never_used() -> None:
    good = jwk(KEY, "key-1")
    assert rsa_key(jwk(new_key(1024), "small")) is None
    for changes in ({"use": "enc"}, {"alg": "RS512"}, {"kty": "EC"}, {"kid": 7}, {"n": "!!"}, {"e": 3}):
        assert rsa_key({**good, **changes}) is None
    assert rsa_key(["not", "a", "key"]) is None

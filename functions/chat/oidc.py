"""OpenID Connect sign-in: verify a provider's ID token once, then the chat issues its own session.

PyJWT parses the token, checks the signature (RS256 only: the algorithm is ours to choose, never
the token's) and the registered claims: `iss` (exactly the issuer the provider's discovery document
names), `aud`, `exp`, `nbf` and `iat` with a leeway of LEEWAY_SECONDS each way, and `exp`, `iat`,
`iss`, `aud` and `sub` present. What PyJWT has no option for is checked here, after it
(docs/architecture.md): time claims that are finite JSON numbers (PyJWT would take "9e9" as a
string), `typ` (an access token is not an ID token), `azp`, `nonce`, Cognito's `token_use`, and a
maximum age from `iat`, so that an old ID token replayed cannot become a session.

The RSA check itself is ours, registered with PyJWT as its RS256: RSASSA-PKCS1-v1_5 with SHA-256
is one modular exponentiation and a comparison of the whole encoded message. PyJWT's own RS256
needs the `cryptography` package, 15 MB unpacked in every function package (the target is 5 MB),
and once installed PyJWT imports it with `import jwt`, in every function that checks a session.

The provider's keys come from its discovery document (`{issuer}/.well-known/openid-configuration`,
then its `jwks_uri`), fetched through an injected `fetch(url) -> bytes` and cached per container
for an hour; a token signed with a key id not in the cache refetches, at most once a minute. A
provider outage, or an answer that is not a discovery document and a key set, stops new sign-ins
with it (StoreError: `503 unavailable`) only when no keys are cached, and never the sessions
already issued (they are the chat's own).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chat.errors import ChatError, StoreError
from chat.ports import Account

if TYPE_CHECKING:
    from jwt import PyJWS

# DER of DigestInfo{sha256, NULL} before the 32-byte hash (RFC 8017 section 9.2, note 1).
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
MIN_MODULUS_BITS = 2048
LEEWAY_SECONDS = 60  # clocks disagree: `exp` this far past, `nbf` and `iat` this far ahead
KEYS_TTL_SECONDS = 3600.0
REFETCH_SECONDS = 60.0
MAX_DOCUMENT_BYTES = 1_000_000
TIME_CLAIMS = ("exp", "iat", "nbf", "auth_time")
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub"]

Fetch = Callable[[str], bytes]


class InvalidIdToken(ChatError):
    status = 401

    def __init__(self, message: str) -> None:
        super().__init__("invalid_id_token", message)


@dataclass(frozen=True)
class RsaKey:
    modulus: int
    exponent: int


def rsa_sha256_verify(modulus: int, exponent: int, message: bytes, signature: bytes) -> bool:
    """RSASSA-PKCS1-v1_5 verification with SHA-256 (RFC 8017 section 8.2.2): the whole encoded
    message is compared, never parsed, so no padding or DigestInfo trick can pass."""
    size = (modulus.bit_length() + 7) // 8
    if modulus.bit_length() < MIN_MODULUS_BITS or len(signature) != size:
        return False
    value = int.from_bytes(signature, "big")
    if value >= modulus:
        return False
    encoded = pow(value, exponent, modulus).to_bytes(size, "big")
    digest = _SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    expected = b"\x00\x01" + b"\xff" * (size - len(digest) - 3) + b"\x00" + digest
    return hmac.compare_digest(encoded, expected)


def rsa_key(jwk: Any) -> RsaKey | None:
    """A provider's RS256 signing key, or None for anything else: another type or use, a modulus
    under 2048 bits, or an exponent that is even or under 3 (exponent 1 signs anything)."""
    from jwt.utils import base64url_decode

    if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or not isinstance(jwk.get("kid"), str):
        return None
    if jwk.get("use", "sig") != "sig" or jwk.get("alg", "RS256") != "RS256":
        return None
    n, e = jwk.get("n"), jwk.get("e")
    if not isinstance(n, str) or not isinstance(e, str):
        return None
    try:
        key = RsaKey(int.from_bytes(base64url_decode(n), "big"), int.from_bytes(base64url_decode(e), "big"))
    except ValueError:  # not base64url
        return None
    usable = key.modulus.bit_length() >= MIN_MODULUS_BITS and 3 <= key.exponent < key.modulus
    return key if usable and key.exponent % 2 == 1 else None


@functools.cache
def _signature_check() -> PyJWS:
    """PyJWT's JWS decoder that knows one algorithm, RS256, and refuses keys under 2048 bits."""
    from jwt import PyJWS
    from jwt.algorithms import Algorithm
    from jwt.exceptions import InvalidKeyError

    class PurePythonRS256(Algorithm):
        """PyJWT's RS256, verification only, over keys that rsa_key() accepted."""

        def prepare_key(self, key: Any) -> RsaKey:
            if not isinstance(key, RsaKey):
                raise InvalidKeyError("not a provider's RSA key")
            return key

        def check_key_length(self, key: Any) -> str | None:
            return None if key.modulus.bit_length() >= MIN_MODULUS_BITS else "RSA key under 2048 bits"

        def sign(self, msg: bytes, key: Any) -> bytes:
            raise NotImplementedError("the chat never signs ID tokens")

        def verify(self, msg: bytes, key: Any, sig: bytes) -> bool:
            return rsa_sha256_verify(key.modulus, key.exponent, msg, sig)

        @staticmethod
        def to_jwk(key_obj: Any, as_dict: bool = False) -> Any:
            raise NotImplementedError

        @staticmethod
        def from_jwk(jwk: Any) -> RsaKey:
            key = rsa_key(json.loads(jwk) if isinstance(jwk, str) else jwk)
            if key is None:
                raise InvalidKeyError("not a usable RS256 key")
            return key

    jws = PyJWS(algorithms=[], options={"enforce_minimum_key_length": True})
    jws.register_algorithm("RS256", PurePythonRS256())
    return jws


def fetch_document(url: str, *, require_https: bool = True) -> bytes:
    """GET a provider's document: HTTPS only, no redirects at all (a redirect could lead from
    https to http), at most 1 MB, 3 s. Tests of a loopback provider pass require_https=False."""
    if require_https and not url.startswith("https://"):
        raise ValueError(f"refusing to fetch provider keys over anything but HTTPS: {url}")
    import urllib.request  # http.client and email: only when keys are fetched, not at cold start

    class NoRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # urllib then raises HTTPError for the 3xx

    opener = urllib.request.build_opener(NoRedirects)
    with opener.open(url, timeout=3) as response:
        body: bytes = response.read(MAX_DOCUMENT_BYTES + 1)
    if len(body) > MAX_DOCUMENT_BYTES:
        raise ValueError("the provider's document is over 1 MB")
    return body


@dataclass
class ProviderKeys:
    issuer: str  # as the provider's discovery document names it: tokens must carry exactly this
    keys: dict[str, RsaKey] = field(default_factory=dict)


def _finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _json_object(data: bytes) -> dict[str, Any]:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not a JSON number")

    document = json.loads(data, parse_constant=refuse)
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    return document


class OidcVerifier:
    def __init__(
        self,
        issuer: str,
        audience: str,
        fetch: Fetch = fetch_document,
        *,
        max_age_seconds: int = 600,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # The configured issuer with or without its trailing slash: the discovery document
        # decides which one the provider's tokens carry (OpenID Connect Discovery 1.0, 4.1 and 4.3).
        self._issuers = {issuer, issuer.rstrip("/"), issuer.rstrip("/") + "/"}
        self._discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        self._audience = audience
        self._fetch = fetch
        self._max_age = max_age_seconds
        self._clock = clock
        self._provider: ProviderKeys | None = None
        self._fetched_at: float | None = None
        self._lock = threading.Lock()

    def verify(self, id_token: str, *, now: int, nonce: str | None = None) -> Account:
        """The token's account. `now` (seconds) bounds its age; PyJWT reads the system clock
        for `exp`, `nbf` and `iat`, the same clock that `now` comes from."""
        import jwt  # here, not at the top: importing this module stays free (composition.py does too)

        try:
            kid = jwt.get_unverified_header(id_token).get("kid")
        except (jwt.PyJWTError, ValueError, RecursionError) as error:
            raise InvalidIdToken("the ID token is not a JWT") from error
        provider = self._keys(kid if isinstance(kid, str) else None)
        key = provider.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidIdToken("the ID token's key is not one of the provider's usable RS256 keys")
        try:
            # PyJWT's annotation names its own key types; a registered algorithm takes its own.
            signed = _signature_check().decode_complete(id_token, key, algorithms=["RS256"])  # type: ignore[arg-type]
            claims = _json_object(signed["payload"])
            for claim in TIME_CLAIMS:
                if claim in claims and not _finite_number(claims[claim]):
                    raise InvalidIdToken(f"the ID token's '{claim}' is not a finite number")
            jwt.decode(
                id_token,
                options={  # the signature was checked just above, with the key and algorithm we chose
                    "verify_signature": False,
                    "verify_exp": True,
                    "verify_nbf": True,
                    "verify_iat": True,
                    "verify_aud": True,
                    "verify_iss": True,
                    "verify_sub": True,
                    "require": REQUIRED_CLAIMS,
                },
                audience=self._audience,
                issuer=provider.issuer,
                leeway=LEEWAY_SECONDS,
            )
        except (jwt.PyJWTError, ValueError, RecursionError) as error:
            raise InvalidIdToken(f"the ID token is refused: {error}") from error
        self._check_id_token(signed["header"], claims, now=now, nonce=nonce)
        name: Any = next(
            (claims[c] for c in ("name", "preferred_username", "cognito:username") if claims.get(c)), None
        )
        return Account(
            issuer=provider.issuer, subject=claims["sub"], name=name if isinstance(name, str) else None
        )

    def _check_id_token(
        self, header: dict[str, Any], claims: dict[str, Any], *, now: int, nonce: str | None
    ) -> None:
        typ = header.get("typ")
        if typ is not None and str(typ).lower().removeprefix("application/") != "jwt":
            raise InvalidIdToken(f"a token of type {typ!r} is not an ID token")  # at+jwt: an access token
        if claims.get("token_use", "id") != "id":  # Amazon Cognito: an access token is not an ID token
            raise InvalidIdToken("the token is not an ID token")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if "azp" in claims and claims["azp"] != self._audience:
            raise InvalidIdToken("the ID token was issued to another party (azp)")
        if len(audiences) > 1 and "azp" not in claims:
            raise InvalidIdToken("an ID token for several audiences must name its authorized party (azp)")
        if not claims["sub"]:
            raise InvalidIdToken("the ID token names no subject")
        if now - claims["iat"] > self._max_age + LEEWAY_SECONDS:
            raise InvalidIdToken(f"the ID token was issued more than {self._max_age} s ago: sign in again")
        if "auth_time" in claims and claims["auth_time"] > now + LEEWAY_SECONDS:
            raise InvalidIdToken("the ID token's auth_time is in the future")
        if nonce is not None:
            sent = claims.get("nonce")
            if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), nonce.encode()):
                raise InvalidIdToken("the ID token's nonce is not the one sent with it")

    def _keys(self, kid: str | None) -> ProviderKeys:
        with self._lock:
            age = math.inf if self._fetched_at is None else self._clock() - self._fetched_at
            known = self._provider is not None and kid in self._provider.keys
            if self._provider is None or age >= KEYS_TTL_SECONDS or (not known and age >= REFETCH_SECONDS):
                self._provider = self._fetch_keys()
                self._fetched_at = self._clock()
            return self._provider

    def _fetch_keys(self) -> ProviderKeys:
        try:
            discovery = _json_object(self._fetch(self._discovery_url))
            issuer, jwks_uri = discovery.get("issuer"), discovery.get("jwks_uri")
            if not isinstance(issuer, str) or issuer not in self._issuers:
                raise ValueError("the discovery document names another issuer")
            if not isinstance(jwks_uri, str):
                raise ValueError("the discovery document names no jwks_uri")
            keys = _json_object(self._fetch(jwks_uri)).get("keys")
            if not isinstance(keys, list):
                raise ValueError("the key set has no 'keys' list")
            usable = {jwk["kid"]: key for jwk in keys if (key := rsa_key(jwk)) is not None}
            return ProviderKeys(issuer=issuer, keys=usable)
        except (OSError, ValueError, RecursionError) as error:  # network, HTTP status, JSON, shape
            if self._provider is not None:
                return self._provider  # keep verifying with the keys we had
            raise StoreError("JWKS", type(error).__name__) from error

"""The chat's own sessions: compact JWTs signed with HMAC-SHA256 (HS256), made and checked by PyJWT.

A session names a user (`sub`, a stable user id) and a display name (`name`). It has an id (`sid`)
and the time it began (`auth_time`), both kept by every renewal, so a sign-out can name it and it
ends MaxSessionAgeSeconds after it began however often it is renewed; each token lasts
SessionTtlSeconds (never past that end). Both regions hold the same signing keys (a Secrets
Manager secret replicated to each), so a session made in one region is verified in the other with
no call between them. Verification chooses the key by `kid`, lets PyJWT check the signature with
HS256 only (the algorithm is ours, never the token's), accepts exactly one base64url spelling of
each part, and checks the issuer, the expiry and the age against the caller's clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any

from chat import ulid
from chat.errors import Unauthorized

ISSUER = "resilient-chat"
ALGORITHM = "HS256"
LEEWAY_SECONDS = 30
MAX_TOKEN_CHARS = 4096  # a session is about 400; anything far larger is not ours
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


@dataclass(frozen=True)
class Session:
    user_id: str
    name: str
    expires_at: int  # Unix seconds
    session_id: str  # `sid`: new_session_id() at sign-in, kept by every renewal
    started_at: int  # `auth_time`: the sign-in's time (Unix seconds), kept by every renewal


@dataclass(frozen=True)
class SigningKeys:
    """The keys that verify sessions, by key id; new sessions are signed with `current`."""

    keys: dict[str, bytes]
    current: str

    @classmethod
    def from_secret(cls, secret: str) -> SigningKeys:
        """The secret's JSON: `{"kid", "secret"}` as CloudFormation generates it, or after a
        rotation `{"keys": [{"kid", "secret"}, ...]}`, oldest first (sign with the last)."""
        document = json.loads(secret)
        entries = document.get("keys", [document])
        keys = {str(entry["kid"]): str(entry["secret"]).encode() for entry in entries}
        if not keys or any(len(key) < 32 for key in keys.values()):
            raise ValueError("the session secret needs at least one key of 32 characters or more")
        return cls(keys, str(entries[-1]["kid"]))


def new_guest_id() -> str:
    """`g_` and 26 random Crockford base32 characters (130 bits)."""
    return "g_" + "".join(secrets.choice(ulid.ALPHABET) for _ in range(26))


def new_session_id() -> str:
    """26 random Crockford base32 characters (130 bits): a session's id, kept by its renewals."""
    return "".join(secrets.choice(ulid.ALPHABET) for _ in range(26))


def account_user_id(issuer: str, subject: str) -> str:
    """`o_` and a base32 SHA-256 of the provider's (issuer, subject), so one account is one user
    wherever it signs in; 32 characters (160 bits) keep collisions out of reach."""
    digest = hashlib.sha256(json.dumps([issuer, subject]).encode()).digest()
    return "o_" + base64.b32encode(digest).decode().lower()[:32]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64decode(part: str) -> bytes:
    """base64url without padding, as JWTs carry it, in its one canonical spelling: the unused low
    bits of the last character must be zero (otherwise four spellings of a 32-byte HMAC verify).
    Raises ValueError on anything else."""
    if not part or len(part) % 4 == 1 or not _B64URL.fullmatch(part):
        raise ValueError("not base64url")
    try:
        data = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except binascii.Error as error:
        raise ValueError("not base64url") from error
    if _b64(data) != part:
        raise ValueError("not canonical base64url")
    return data


def split_token(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """A compact JWS's (header, claims, signed bytes, signature); ValueError if it is not one."""
    if not token.isascii() or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise ValueError("not a compact JWT")
    header_part, claims_part, signature_part = token.split(".")
    try:
        header = json.loads(b64decode(header_part))
        claims = json.loads(b64decode(claims_part))
    except RecursionError as error:  # deep nesting fits in 4 KB
        raise ValueError("not a compact JWT") from error
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("not a compact JWT")
    return header, claims, f"{header_part}.{claims_part}".encode(), b64decode(signature_part)


def sign(session: Session, keys: SigningKeys, *, now: int) -> str:
    import jwt  # PyJWT loads on the first sign or verify: sending and the fan-out never need it

    claims = {
        "iss": ISSUER,
        "sub": session.user_id,
        "name": session.name,
        "sid": session.session_id,
        "auth_time": session.started_at,
        "iat": now,
        "exp": session.expires_at,
    }
    return jwt.encode(claims, keys.keys[keys.current], algorithm=ALGORITHM, headers={"kid": keys.current})


def _whole_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def verify(token: str, keys: SigningKeys, *, now: int, max_age_seconds: int) -> Session:
    """The session a token carries, or Unauthorized. Revocation (sign-out) is the caller's check:
    it needs a store, this needs none."""
    import jwt

    try:
        # PyJWT decodes base64url leniently (the unused bits, stray characters): one spelling only.
        header, _, _, _ = split_token(token)
    except ValueError as error:
        raise Unauthorized("the session token is malformed") from error
    if header.get("alg") != ALGORITHM:  # PyJWT refuses it too (algorithms=[HS256]); a clearer word
        raise Unauthorized("the session token is not signed with HS256")
    kid = header.get("kid")
    key = keys.keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise Unauthorized("the session token's key is unknown")
    try:
        # Times are checked below against the caller's clock, which tests can set.
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            options={
                "require": ["iss", "sub", "exp", "sid", "auth_time"],
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "verify_aud": False,
            },
        )
    except jwt.InvalidSignatureError as error:
        raise Unauthorized("the session token's signature does not match") from error
    except (jwt.InvalidTokenError, RecursionError) as error:
        raise Unauthorized("the session token is not a chat session") from error
    user_id, name, session_id = claims["sub"], claims.get("name"), claims["sid"]
    expires_at, started_at = claims["exp"], claims["auth_time"]
    if not (
        isinstance(user_id, str)
        and isinstance(name, str)
        and isinstance(session_id, str)
        and user_id
        and session_id
        and _whole_number(expires_at)
        and _whole_number(started_at)
    ):
        raise Unauthorized("the session token is not a chat session")
    if expires_at + LEEWAY_SECONDS < now:
        raise Unauthorized("the session has expired: sign in again")
    if now - started_at > max_age_seconds:
        raise Unauthorized(f"the session began more than {max_age_seconds} s ago: sign in again")
    return Session(user_id, name, expires_at, session_id=session_id, started_at=started_at)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None

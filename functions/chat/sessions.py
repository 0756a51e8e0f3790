"""The chat's own sessions: compact JWTs signed with HMAC-SHA256 (HS256), standard library only.

A session names a user (`sub`, a stable user id) and a display name (`name`), and lasts
SessionTtlSeconds. Both regions hold the same signing keys (a Secrets Manager secret replicated
to each), so a session made in one region is verified in the other with no call between them.
Verification refuses anything but HS256 with a known key id (`kid`), compares the signature in
constant time, and checks the issuer and the expiry (with a small leeway for clock skew).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

from chat import ulid
from chat.model import ChatError

ISSUER = "resilient-chat"
LEEWAY_SECONDS = 30
MAX_TOKEN_CHARS = 4096  # a session is about 300; anything far larger is not ours


class Unauthorized(ChatError):
    """No session, or one that is not ours, tampered with or expired."""

    status = 401

    def __init__(self, message: str = "sign in: a valid session token is required") -> None:
        super().__init__("unauthorized", message)


@dataclass(frozen=True)
class Session:
    user_id: str
    name: str
    expires_at: int  # Unix seconds


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


def account_user_id(issuer: str, subject: str) -> str:
    """`o_` and a base32 SHA-256 of the provider's (issuer, subject), so one account is one user
    wherever it signs in; 32 characters (160 bits) keep collisions out of reach."""
    digest = hashlib.sha256(json.dumps([issuer, subject]).encode()).digest()
    return "o_" + base64.b32encode(digest).decode().lower()[:32]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64decode(part: str) -> bytes:
    """base64url without padding, as JWTs carry it; raises ValueError on anything else."""
    if not part or len(part) % 4 == 1 or not part.replace("-", "").replace("_", "").isalnum():
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except binascii.Error as error:
        raise ValueError("not base64url") from error


def _json_segment(data: dict[str, Any]) -> str:
    return _b64(json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode())


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
    header = {"alg": "HS256", "typ": "JWT", "kid": keys.current}
    claims = {
        "iss": ISSUER,
        "sub": session.user_id,
        "name": session.name,
        "iat": now,
        "exp": session.expires_at,
        "kid": keys.current,
    }
    signed = f"{_json_segment(header)}.{_json_segment(claims)}"
    signature = hmac.new(keys.keys[keys.current], signed.encode(), hashlib.sha256).digest()
    return f"{signed}.{_b64(signature)}"


def verify(token: str, keys: SigningKeys, *, now: int) -> Session:
    try:
        header, claims, signed, signature = split_token(token)
    except ValueError as error:
        raise Unauthorized("the session token is malformed") from error
    # The algorithm is ours to choose, never the token's: "none" or RS256 tricks end here.
    if header.get("alg") != "HS256":
        raise Unauthorized("the session token is not signed with HS256")
    kid = header.get("kid")
    key = keys.keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise Unauthorized("the session token's key is unknown")
    if not hmac.compare_digest(hmac.new(key, signed, hashlib.sha256).digest(), signature):
        raise Unauthorized("the session token's signature does not match")
    user_id, name, expires_at = claims.get("sub"), claims.get("name"), claims.get("exp")
    if claims.get("iss") != ISSUER or not isinstance(user_id, str) or not isinstance(name, str):
        raise Unauthorized("the session token is not a chat session")
    if not isinstance(expires_at, int) or isinstance(expires_at, bool) or expires_at + LEEWAY_SECONDS < now:
        raise Unauthorized("the session has expired: sign in again")
    return Session(user_id=user_id, name=name, expires_at=expires_at)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header (scheme case-insensitive)."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None

"""The chat's one message model: who speaks, a message as sent and as stored, a connection, and
what is derived from them (a user's tag and kind, times as text). Plain Python on purpose: no
pydantic, so importing a handler stays cheap (the cold-start benchmark)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

Transport = Literal["websocket", "http"]

# Crockford's base32, lower case: no i, l, o or u, so a tag never holds a letter that looks like
# a digit or another letter.
TAG_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
TAG_CHARS = 4

UserKind = Literal["guest", "account"]


def user_tag(user_id: str) -> str:
    """Four characters of SHA-256(user id) in lower-case Crockford base32 (20 bits): what tells
    two people of one name apart. The same user has the same tag in every region and message."""
    bits = int.from_bytes(hashlib.sha256(user_id.encode()).digest()[:3]) >> (24 - 5 * TAG_CHARS)
    return "".join(TAG_ALPHABET[(bits >> shift) & 31] for shift in range(5 * (TAG_CHARS - 1), -1, -5))


def user_kind(user_id: str) -> UserKind:
    """`account` for an OpenID Connect account (`o_` ids); anyone else is a `guest`."""
    return "account" if user_id.startswith("o_") else "guest"


@dataclass(frozen=True)
class Author:
    """Who speaks: a session's user id and display name, never a request body's word."""

    user_id: str
    name: str


@dataclass(frozen=True)
class NewMessage:
    """A message as a client sent it, validated and normalised, before the server accepted it.
    Its author is never the client's word: the server adds the session's."""

    id: str
    room: str
    text: str


@dataclass(frozen=True)
class Message:
    """A stored message: the public shape of docs/api.md. Its author's tag and kind are derived
    from `authorId`, so messages stored before they existed carry them too."""

    id: str
    room: str
    author: str  # the session's display name
    authorId: str  # the session's user id: with the id, what makes a message unique
    text: str | None  # None once deleted
    sentAt: str
    acceptedRegion: str  # the region that accepted its latest change
    transport: str
    # 1 when posted, one more after each accepted edit or delete (chat/edits.py).
    version: int = 1
    editedAt: str | None = None
    deleted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "room": self.room,
            "author": self.author,
            "authorId": self.authorId,
            "authorTag": user_tag(self.authorId),
            "authorKind": user_kind(self.authorId),
            "text": self.text,
            "sentAt": self.sentAt,
            "acceptedRegion": self.acceptedRegion,
            "transport": self.transport,
            "version": self.version,
            "editedAt": self.editedAt,
            "deleted": self.deleted,
        }


@dataclass(frozen=True)
class Change:
    """The part of a message that edits and deletes change (their rules: chat/edits.py)."""

    version: int = 1
    text: str | None = None
    editedAt: str | None = None
    deleted: bool = False


@dataclass(frozen=True)
class Connection:
    connection_id: str
    room: str
    user_id: str


def iso_time(ms: int) -> str:
    """RFC 3339 UTC time with milliseconds, e.g. 2026-11-25T10:00:00.123Z."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"

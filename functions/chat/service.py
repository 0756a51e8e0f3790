"""The chat's rules as plain functions. They take their stores and settings as arguments and
never import boto3, so unit tests hand in fakes and every handler stays a few lines."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from chat import sessions
from chat.errors import Forbidden, InvalidInput, RateLimited, StoreError, Unauthorized
from chat.model import Author, Connection, Message, Transport, iso_time, user_kind, user_tag
from chat.names import check_look_alikes, validate_name
from chat.ports import (
    AccountVerifier,
    ConnectionStore,
    KeySource,
    MessageStore,
    PresenceStore,
    RateLimiter,
    SessionRevocations,
)
from chat.presence import TYPING_INTERVAL_MS, Member, live_regions, view
from chat.settings import Settings
from chat.ulid import timestamp_ms
from chat.validation import parse_new_message, parse_page, string_field, validate_room


def sign_in(
    payload: Any,
    *,
    authorization: str | None,
    keys: KeySource,
    accounts: AccountVerifier | None,
    revocations: SessionRevocations,
    settings: Settings,
    now: int,
    limiter: RateLimiter | None = None,
    source_ip: str | None = None,
) -> dict[str, Any]:
    """`POST /session`: renew the session in `authorization` (same user id), exchange a provider's
    `idToken`, or sign a guest in by `name`. Returns `{"token", "user", "expiresAt"}`. A new guest
    is metered per `source_ip` by `limiter` (the HTTP API always passes both)."""
    if not isinstance(payload, dict):
        raise InvalidInput("invalid_message", "the body must be a JSON object")
    name = validate_name(payload["name"]) if payload.get("name") is not None else None
    signing = keys.signing_keys()
    renewed: sessions.Session | None = None  # a renewal keeps the session's id and start
    if authorization is not None:
        renewed = current_session(authorization, keys, revocations=revocations, settings=settings, now=now)
        user_id, name = renewed.user_id, name or renewed.name
    elif payload.get("idToken") is not None:
        if accounts is None:
            raise Forbidden("oidc_sign_in_disabled", "this API signs in no OpenID Connect accounts")
        if not isinstance(payload["idToken"], str):
            raise InvalidInput("invalid_id_token", "'idToken' must be a string")
        nonce = payload.get("nonce")  # the client's, from its authentication request
        if nonce is not None and not isinstance(nonce, str):
            raise InvalidInput("invalid_id_token", "'nonce' must be a string")
        account = accounts.verify(payload["idToken"], now=now, nonce=nonce)
        user_id = sessions.account_user_id(account.issuer, account.subject)
        if name is None and account.name is None:
            raise InvalidInput("missing_field", "the account has no name: send 'name' with the 'idToken'")
        name = name or validate_name(account.name)
    elif not settings.guest_sign_in:
        raise Forbidden("guest_sign_in_disabled", "guest sign-in is turned off: sign in with an 'idToken'")
    elif name is None:
        raise InvalidInput("missing_field", "'name' is required")
    else:
        if limiter is not None and source_ip is not None:
            admit_guest_sign_in(source_ip, limiter=limiter, settings=settings, now_ms=now * 1000)
        user_id = sessions.new_guest_id()
    started_at = now if renewed is None else renewed.started_at
    session = sessions.Session(
        user_id=user_id,
        name=name,
        # never past the session's maximum age, however often it is renewed
        expires_at=min(now + settings.session_ttl_seconds, started_at + settings.max_session_age_seconds),
        session_id=sessions.new_session_id() if renewed is None else renewed.session_id,
        started_at=started_at,
    )
    return {
        "token": sessions.sign(session, signing, now=now),
        "user": {
            "id": session.user_id,
            "name": session.name,
            "tag": user_tag(session.user_id),
            "kind": user_kind(session.user_id),
        },
        "expiresAt": iso_time(session.expires_at * 1000),
    }


def current_session(
    authorization: str | None,
    keys: KeySource,
    *,
    revocations: SessionRevocations,
    settings: Settings,
    now: int,
) -> sessions.Session:
    """The session of an `Authorization: Bearer <session token>` header, unless it is invalid,
    expired, older than the maximum age or signed out: Unauthorized."""
    token = sessions.bearer_token(authorization)
    if token is None:
        raise Unauthorized("send 'Authorization: Bearer <token>' with a token from POST /session")
    session = sessions.verify(
        token, keys.signing_keys(), now=now, max_age_seconds=settings.max_session_age_seconds
    )
    if revocations.is_revoked(session.session_id):
        raise Unauthorized("this session was signed out: sign in again")
    return session


def authenticate(
    authorization: str | None,
    keys: KeySource,
    *,
    revocations: SessionRevocations,
    settings: Settings,
    now: int,
) -> Author:
    """The author of a rooms request; Unauthorized without a current session."""
    session = current_session(authorization, keys, revocations=revocations, settings=settings, now=now)
    return Author(user_id=session.user_id, name=session.name)


def sign_out(
    authorization: str | None,
    keys: KeySource,
    *,
    revocations: SessionRevocations,
    settings: Settings,
    now: int,
) -> sessions.Session:
    """`DELETE /session`: the session in `authorization` (and so every token renewed from it) is
    refused from now on, here at once and in every region once replicated. Returns it."""
    session = current_session(authorization, keys, revocations=revocations, settings=settings, now=now)
    # Kept until no token of the session can be valid anyway (its maximum age, or a later expiry
    # signed under a larger maximum), plus the leeway verification allows.
    last_valid = max(session.expires_at, session.started_at + settings.max_session_age_seconds)
    revocations.revoke(
        session.session_id, user_id=session.user_id, now=now, expires_at=last_valid + sessions.LEEWAY_SECONDS
    )
    return session


def accept_message(
    payload: Any,
    *,
    author: Author,
    transport: Transport,
    store: MessageStore,
    limiter: RateLimiter,
    settings: Settings,
    now_ms: int,
    room: str | None = None,
) -> tuple[Message, bool]:
    """Validate, admit under the author's rate and store a message idempotently: (stored
    message, True if it is new). The same author's retry of an id, in this region or the
    other, returns what was stored first; another author's id is another message."""
    new = parse_new_message(
        payload, room=room, now_ms=now_ms, max_skew_ms=settings.max_clock_skew_seconds * 1000
    )
    admit_message(author, new.room, limiter=limiter, settings=settings, now_ms=now_ms)
    check_look_alikes(author, new.room, store=store, now_ms=now_ms)
    message = Message(
        id=new.id,
        room=new.room,
        author=author.name,
        authorId=author.user_id,
        text=new.text,
        sentAt=iso_time(timestamp_ms(new.id)),
        acceptedRegion=settings.region,
        transport=transport,
    )
    expires_at = now_ms // 1000 + settings.message_ttl_days * 86400
    return store.put_message(message, expires_at=expires_at)


def admit_message(
    author: Author, room: str, *, limiter: RateLimiter, settings: Settings, now_ms: int
) -> None:
    """A message, edit or delete counts against its author's rate, and a guest's against the
    room's guests' too: RateLimited, with nothing stored, beyond them."""
    rate = settings.message_rate
    wait_ms = rate.admit(limiter, author.user_id, now_ms=now_ms)
    if wait_ms is not None:
        raise RateLimited(
            f"over {rate.rate:g} messages a second (bursts of {rate.burst}): resend in {wait_ms} ms",
            retry_after_ms=wait_ms,
        )
    if author.user_id.startswith(GUEST_PREFIX):
        admit_guest_message(room, limiter=limiter, settings=settings, now_ms=now_ms)


def open_connection(
    connection_id: str,
    query: Mapping[str, str] | None,
    *,
    author: Author,
    store: ConnectionStore,
    settings: Settings,
    now_ms: int,
) -> Connection:
    """Register a WebSocket connection for `?room=<room>` (the authorizer checked `&token=`),
    unless its author already holds the most connections allowed in this region: a slot is
    claimed atomically first, and given back if the connection cannot be registered. The user's
    first connection to the room here makes them a member of it (chat/presence.py)."""
    query = query or {}
    if "room" not in query:
        raise InvalidInput("missing_field", "connect with ?room=<room>&token=<token>")
    room = validate_room(query["room"])
    expires_at = now_ms // 1000 + settings.connection_ttl_seconds
    cap = settings.max_connections_per_user
    now = now_ms // 1000
    slot = store.claim_slot(author.user_id, connection_id, room=room, expires_at=expires_at, cap=cap, now=now)
    if slot is None:
        raise RateLimited(f"at most {cap} open connections per user: close one first", retry_after_ms=None)
    try:
        store.put_connection(
            connection_id,
            room=room,
            user_id=author.user_id,
            connected_at=iso_time(now_ms),
            expires_at=expires_at,
        )
    except BaseException:
        # A refused handshake gives its slot back (if that fails too, the slot expires with it).
        release_quietly(store, author.user_id, connection_id, room=room, expires_at=expires_at)
        raise
    if not slot.others_in_room:
        member = Member(room, author.user_id, author.name, settings.region, slot.seq, connection_id, now_ms)
        try:
            store.enter_room(member)
        except BaseException:
            with contextlib.suppress(StoreError):
                store.delete_connection(connection_id)
            raise
    return Connection(connection_id=connection_id, room=room, user_id=author.user_id)


def release_quietly(
    store: ConnectionStore, user_id: str, connection_id: str, *, room: str, expires_at: int
) -> None:
    with contextlib.suppress(StoreError):
        store.release_slot(user_id, connection_id, room=room, expires_at=expires_at)


def read_presence(room: str, *, presence: PresenceStore, region: str, now_ms: int) -> dict[str, Any]:
    """`GET /rooms/{room}/presence`: the room's members in every live region, each once."""
    room = validate_room(room)
    live = live_regions(presence.beats(), own=region, now_ms=now_ms)
    members, _ = presence.members(room)
    return view(members, live, region=region)


def send_typing(
    payload: Any,
    *,
    author: Author,
    connection_id: str,
    connection_room: str | None,
    presence: PresenceStore,
    region: str,
    now_ms: int,
) -> bool:
    """`{"action": "typing", "room"}`: tell the room's other connections, in every region, at most
    once per TYPING_INTERVAL_MS per user, whatever the room (extra ones are dropped quietly: False).
    Only in the connection's own room: elsewhere it would show the user typing where they are not
    (dropped quietly too)."""
    if not isinstance(payload, dict):
        raise InvalidInput("invalid_message", "the body must be a JSON object")
    room = validate_room(string_field(payload, "room"))
    if room != connection_room:
        return False
    return presence.typing(
        room,
        author,
        connection_id=connection_id,
        region=region,
        now_ms=now_ms,
        interval_ms=TYPING_INTERVAL_MS,
    )


GUEST_PREFIX = "g_"  # sessions.new_guest_id; accounts are `o_`


def admit_guest_sign_in(source_ip: str, *, limiter: RateLimiter, settings: Settings, now_ms: int) -> None:
    """New guest sessions from one source address share one budget (GCRA, in each region):
    RateLimited, with nothing made, beyond it."""
    rate = settings.guest_sign_in_rate
    wait_ms = rate.admit(limiter, f"guest-sign-in#{source_ip}", now_ms=now_ms)
    if wait_ms is not None:
        raise RateLimited(
            f"over {rate.rate:g} guest sign-ins a minute from this address"
            f" (bursts of {rate.burst}): retry in {wait_ms} ms",
            retry_after_ms=wait_ms,
        )


def admit_guest_message(room: str, *, limiter: RateLimiter, settings: Settings, now_ms: int) -> None:
    """Every guest's messages in one room share one room-wide budget (GCRA, in each region), on
    top of each guest's own: a crowd of fresh guests cannot drown a room, accounts are not in it."""
    rate = settings.guest_room_rate
    wait_ms = rate.admit(limiter, f"guests-in-room#{room}", now_ms=now_ms)
    if wait_ms is not None:
        raise RateLimited(
            f"this room's guests together are over {rate.rate:g} messages"
            f" a second (bursts of {rate.burst}): resend in {wait_ms} ms, or sign in",
            retry_after_ms=wait_ms,
        )


def read_history(
    room: str, *, after: str | None, limit: str | None, store: MessageStore, region: str
) -> dict[str, Any]:
    """One page of a room's history, oldest first, with the region that served it."""
    room = validate_room(room)
    after_id, page_size = parse_page(after, limit)
    messages, next_id = store.list_messages(room, after=after_id, limit=page_size)
    return {"messages": [m.to_json() for m in messages], "region": region, "next": next_id}


def check_health(
    *, messages: MessageStore, connections: ConnectionStore, region: str, now_ms: int
) -> tuple[bool, dict[str, Any]]:
    """Deep health: this region must read and write both of its tables."""
    checks: dict[str, str] = {}
    failing: str | None = None
    for name, probe in (
        ("messagesTable", messages.probe),
        ("connectionsTable", lambda: connections.probe(region, now_ms // 1000)),
    ):
        try:
            probe()
            checks[name] = "ok"
        except StoreError as error:
            checks[name] = error.code
            failing = failing or name
    body: dict[str, Any] = {"status": "ok" if failing is None else "unhealthy", "region": region}
    body["checks"] = checks
    if failing is not None:
        body["failing"] = failing
    body["checkedAt"] = iso_time(now_ms)
    return failing is None, body

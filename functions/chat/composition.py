"""The composition root: the one place that knows which adapter plays which port. It makes the
AWS clients and the adapters on first use, caches them per container, and binds the chat's rules
to them, to the settings and to the clock: `service()` (chat/chat_service.py) for the WebSocket
and HTTP handlers, `fanout_service()` (chat/fanout_service.py) for the fan-out's, so a handler is
parse, call, respond. Tests call reset() after changing the environment; nothing here runs at
import time but the boto3 import itself."""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from chat.rate_limiter import DynamoRateLimiter
from chat.settings import get_settings
from chat.store import DynamoConnectionStore, DynamoMessageStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

    from chat.changes_store import DynamoMessageChanges
    from chat.chat_service import ChatService
    from chat.fanout_service import FanoutService
    from chat.keyring import SecretsManagerKeySource
    from chat.oidc import OidcVerifier
    from chat.page_queue import SqsPageQueue
    from chat.presence_store import DynamoPresence
    from chat.push import ManagementApiPusher
    from chat.revocations import DynamoSessionRevocations, SocketCloser

# The adapters that only some functions use are imported where they are made, so a handler loads
# only what it uses (the cold-start benchmark: the HTTP API function never posts or queues pages).

# Standard retry mode backs off on throttling (ProvisionedThroughputExceeded, ThrottlingException)
# and on 5xx. Short timeouts: a Lambda must not spend its budget on one stuck call.
_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 4}, connect_timeout=2, read_timeout=5)


@functools.cache
def dynamodb() -> DynamoDBClient:
    return boto3.client("dynamodb", region_name=get_settings().region, config=_RETRIES)


@functools.cache
def secretsmanager() -> SecretsManagerClient:
    return boto3.client("secretsmanager", region_name=get_settings().region, config=_RETRIES)


@functools.cache
def sqs() -> SQSClient:
    return boto3.client("sqs", region_name=get_settings().region, config=_RETRIES)


@functools.cache
def page_queue() -> SqsPageQueue:
    """The fan-out's page queue (the stream handler and the workers send to it)."""
    url = get_settings().fanout_page_queue_url
    if not url:
        raise RuntimeError("FANOUT_PAGE_QUEUE_URL is not set")
    from chat.page_queue import SqsPageQueue

    return SqsPageQueue(sqs(), url)


@functools.cache
def pusher() -> ManagementApiPusher:
    """Posts to this stage's @connections, signed with the function's own credentials."""
    settings = get_settings()
    if not settings.management_endpoint:
        raise RuntimeError("WEBSOCKET_MANAGEMENT_ENDPOINT is not set")
    credentials = boto3.session.Session().get_credentials()
    if credentials is None:
        raise RuntimeError("no AWS credentials to sign @connections requests with")
    from chat.push import ManagementApiPusher

    return ManagementApiPusher(
        settings.management_endpoint,
        region=settings.region,
        credentials=credentials,
        pool_size=settings.fanout_concurrency,
    )


@functools.cache
def message_store() -> DynamoMessageStore:
    return DynamoMessageStore(dynamodb(), get_settings().messages_table)


@functools.cache
def message_changes() -> DynamoMessageChanges:
    """Edits, deletes and the stream's repairs of them (chat/edits.py)."""
    from chat.changes_store import DynamoMessageChanges

    return DynamoMessageChanges(dynamodb(), get_settings().messages_table)


@functools.cache
def presence_store() -> DynamoPresence:
    """Memberships, beats and typing: items of the messages global table (chat/presence.py)."""
    from chat.presence_store import DynamoPresence

    return DynamoPresence(dynamodb(), get_settings().messages_table)


@functools.cache
def connection_store() -> DynamoConnectionStore:
    """A connection's item and slot here, and the membership its first and last write."""
    settings = get_settings()
    return DynamoConnectionStore(
        dynamodb(),
        settings.connections_table,
        presence=presence_store(),
        region=settings.region,
        clock=_wall_clock,
    )


@functools.cache
def rate_limiter() -> DynamoRateLimiter:
    return DynamoRateLimiter(dynamodb(), get_settings().connections_table)


@functools.cache
def session_revocations() -> DynamoSessionRevocations:
    """Signed-out sessions: items of the messages global table (chat/revocations.py)."""
    from chat.revocations import DynamoSessionRevocations

    return DynamoSessionRevocations(dynamodb(), get_settings().messages_table)


@functools.cache
def socket_closer() -> SocketCloser:
    """Closes this region's WebSockets of a signed-out user (the fan-out, on a sign-out's record)."""
    settings = get_settings()
    if not settings.management_endpoint:
        raise RuntimeError("WEBSOCKET_MANAGEMENT_ENDPOINT is not set")
    from chat.revocations import SocketCloser

    management = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=settings.management_endpoint,
        region_name=settings.region,
        config=_RETRIES,
    )
    return SocketCloser(dynamodb(), settings.connections_table, management)


@functools.cache
def session_keys() -> SecretsManagerKeySource:
    """This region's replica of the session secret (the same name in every region)."""
    secret_id = get_settings().session_secret_id
    if not secret_id:
        raise RuntimeError("SESSION_SECRET_ID is not set")
    from chat.keyring import SecretsManagerKeySource

    return SecretsManagerKeySource(secretsmanager(), secret_id)


@functools.cache
def accounts() -> OidcVerifier | None:
    """The OpenID Connect provider's verifier, when the stack names an issuer and an audience."""
    settings = get_settings()
    if settings.oidc_issuer is None or settings.oidc_audience is None:
        return None
    from chat.oidc import OidcVerifier  # only stacks with a provider pay for its import

    return OidcVerifier(
        settings.oidc_issuer, settings.oidc_audience, max_age_seconds=settings.oidc_max_token_age_seconds
    )


def _wall_clock() -> float:
    return time.time()  # looked up on each call, so a test's patched clock is the clock


@functools.cache
def service() -> ChatService:
    """The chat service of this container, for the WebSocket and HTTP handlers."""
    from chat.chat_service import ChatService  # the fan-out's functions never load the sessions' JWT

    return ChatService(
        settings=get_settings(),
        clock=_wall_clock,
        messages=message_store,
        changes=message_changes,
        connections=connection_store,
        limiter=rate_limiter,
        keys=session_keys,
        revocations=session_revocations,
        accounts=accounts,
        presence=presence_store,
    )


@functools.cache
def fanout_service() -> FanoutService:
    """The fan-out of this container, for the stream handler and the page workers."""
    from chat.fanout_service import FanoutService
    from chat.push import POSTING_MARGIN_SECONDS

    return FanoutService(
        settings=get_settings(),
        connections=connection_store,
        changes=message_changes,
        pusher=lambda time_left: pusher().until(time_left),
        pages=page_queue,
        closer=socket_closer,
        posting_margin_seconds=POSTING_MARGIN_SECONDS,
        clock=time.time,
        presence=presence_store,
        limiter=rate_limiter,
    )


def reset() -> None:
    """Forget settings and clients (tests, and the local stack after changing the environment)."""
    for cached in (
        get_settings,
        dynamodb,
        secretsmanager,
        sqs,
        page_queue,
        pusher,
        message_store,
        message_changes,
        presence_store,
        connection_store,
        rate_limiter,
        session_keys,
        session_revocations,
        socket_closer,
        accounts,
        service,
        fanout_service,
    ):
        cached.cache_clear()

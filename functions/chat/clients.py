"""AWS clients, created on first use and cached per container. Tests call reset() after
changing the environment; nothing here runs at import time but the boto3 import itself."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from chat.push import ManagementApiPusher
from chat.settings import get_settings
from chat.store import DynamoConnectionStore, DynamoMessageStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# Standard retry mode backs off on throttling (ProvisionedThroughputExceeded, ThrottlingException)
# and on 5xx. Short timeouts: a Lambda must not spend its budget on one stuck call.
_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 4}, connect_timeout=2, read_timeout=5)


@functools.cache
def dynamodb() -> DynamoDBClient:
    return boto3.client("dynamodb", region_name=get_settings().region, config=_RETRIES)


@functools.cache
def pusher() -> ManagementApiPusher:
    """Posts to this stage's @connections, signed with the function's own credentials."""
    settings = get_settings()
    if not settings.management_endpoint:
        raise RuntimeError("WEBSOCKET_MANAGEMENT_ENDPOINT is not set")
    credentials = boto3.session.Session().get_credentials()
    if credentials is None:
        raise RuntimeError("no AWS credentials to sign @connections requests with")
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
def connection_store() -> DynamoConnectionStore:
    return DynamoConnectionStore(dynamodb(), get_settings().connections_table)


def reset() -> None:
    """Forget settings and clients (tests, and the local stack after changing the environment)."""
    for cached in (get_settings, dynamodb, pusher, message_store, connection_store):
        cached.cache_clear()

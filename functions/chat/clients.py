"""AWS clients, created on first use and cached per container. Tests call reset() after
changing the environment; nothing here runs at import time but the boto3 import itself."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from chat.settings import get_settings
from chat.store import DynamoConnectionStore, DynamoMessageStore

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient
    from mypy_boto3_dynamodb import DynamoDBClient

# Standard retry mode backs off on throttling (ProvisionedThroughputExceeded, LimitExceeded/429)
# and on 5xx. Short timeouts: a Lambda must not spend its budget on one stuck call.
_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 4}, connect_timeout=2, read_timeout=5)


@functools.cache
def dynamodb() -> DynamoDBClient:
    return boto3.client("dynamodb", region_name=get_settings().region, config=_RETRIES)


@functools.cache
def management_api() -> ApiGatewayManagementApiClient:
    settings = get_settings()
    if not settings.management_endpoint:
        raise RuntimeError("WEBSOCKET_MANAGEMENT_ENDPOINT is not set")
    pool = _RETRIES.merge(Config(max_pool_connections=settings.fanout_concurrency))
    return boto3.client(
        "apigatewaymanagementapi",
        region_name=settings.region,
        endpoint_url=settings.management_endpoint,
        config=pool,
    )


@functools.cache
def message_store() -> DynamoMessageStore:
    return DynamoMessageStore(dynamodb(), get_settings().messages_table)


@functools.cache
def connection_store() -> DynamoConnectionStore:
    return DynamoConnectionStore(dynamodb(), get_settings().connections_table)


def reset() -> None:
    """Forget settings and clients (tests, and the local stack after changing the environment)."""
    for cached in (get_settings, dynamodb, management_api, message_store, connection_store):
        cached.cache_clear()

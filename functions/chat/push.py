"""The API Gateway management API adapter: posts frames to WebSocket connections."""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from chat.observability import logger
from chat.ports import Delivery

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient


class ManagementApiPusher:
    def __init__(self, client: ApiGatewayManagementApiClient) -> None:
        self._client = client

    def push(self, connection_id: str, data: bytes) -> Delivery:
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=data)
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code == "GoneException" or error.response["ResponseMetadata"].get("HTTPStatusCode") == 410:
                return Delivery.GONE
            logger.warning("post to connection failed", connection_id=connection_id, error=code)
            return Delivery.FAILED
        except BotoCoreError as error:
            logger.warning("post to connection failed", connection_id=connection_id, error=str(error))
            return Delivery.FAILED
        return Delivery.DELIVERED

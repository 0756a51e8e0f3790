"""The one translation of the AWS SDK's errors into the domain's: every adapter raises
`store_error(operation, cause)`, so the domain hears a StoreError with the service's error code
(`ProvisionedThroughputExceededException`, `ResourceNotFoundException`, ...) or, for a failure
below the API (a timeout, a refused connection), the botocore exception's name."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chat.errors import StoreError

# What an adapter catches around an AWS call.
AWS_ERRORS = (ClientError, BotoCoreError)


def error_code(cause: Exception) -> str:
    """The AWS error code of a ClientError, else the exception's class name."""
    return cause.response["Error"]["Code"] if isinstance(cause, ClientError) else type(cause).__name__


def store_error(operation: str, cause: Exception) -> StoreError:
    return StoreError(operation, error_code(cause))


def is_condition_failure(error: ClientError) -> bool:
    return error_code(error) == "ConditionalCheckFailedException"


def old_item(error: ClientError) -> dict[str, Any] | None:
    """The item a failed condition found (ReturnValuesOnConditionCheckFailure=ALL_OLD)."""
    item = error.response.get("Item")
    return item if isinstance(item, dict) and item else None

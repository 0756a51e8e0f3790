"""The gray failures a region's process can play (the stack's `fail`/`heal` controls), named by
the AWS service that fails while the region's APIs keep answering:

- `dynamodb`: every DynamoDB and DynamoDB Streams call made in this process (the functions', the
  stream's event source mapping's, an API Gateway service integration's) is answered with
  DynamoDB's own `500 InternalServerError`, and botocore retries it as it would in AWS. Played by
  a `before-send` handler on boto3's default session, registered before any client exists (each
  client copies the session's handlers when it is made); healthy, it costs about 1.4 µs per
  DynamoDB call (one more handler for botocore to call) and nothing for any other service.
- `lambda`: every invocation is throttled (lambda_/runtime.py raises TooManyRequestsException before the
  handler runs); API Gateway and the event source mappings answer it as they do in AWS.

The supervisor sets them (`POST /_local/faults` on the region's WebSocket port, and `--faults`
when it starts the region's process, so a restarted region comes back as failing as it was)."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from aiohttp import web

SERVICES = ("dynamodb", "lambda")
_failing = dict.fromkeys(SERVICES, False)

# The services' ids as botocore names its events (`before-send.<id>.<Operation>`).
_DYNAMODB_SERVICE_IDS = ("dynamodb", "dynamodb-streams")
_INTERNAL_SERVER_ERROR = json.dumps(
    {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "Internal server error"}
).encode()


def failing(service: str) -> bool:
    return _failing[service]


def current() -> list[str]:
    """The services failing now, in SERVICES order."""
    return [service for service in SERVICES if _failing[service]]


def set_failing(services: Iterable[str]) -> list[str]:
    """Fail exactly these services (heal every other one); returns what fails now."""
    wanted = set(services)
    unknown = wanted - set(SERVICES)
    if unknown:
        raise ValueError(f"no such service: {sorted(unknown)}; one of {list(SERVICES)}")
    for service in SERVICES:
        _failing[service] = service in wanted
    return current()


class _Body(io.BytesIO):
    """A response body as botocore reads a sent request's (`raw.stream()`)."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def _answer_dynamodb(request: Any, **_: Any) -> Any:
    """While DynamoDB fails: its 500, instead of sending the request (None: send it)."""
    if not _failing["dynamodb"]:
        return None
    from botocore.awsrequest import AWSResponse, HTTPHeaders

    headers = HTTPHeaders()
    headers["Content-Type"] = "application/x-amz-json-1.0"
    headers["x-amzn-RequestId"] = uuid.uuid4().hex.upper()
    return AWSResponse(request.url, 500, headers, _Body(_INTERNAL_SERVER_ERROR))


def install(session: Any = None) -> None:
    """Before any client is created: every later client of `session` (boto3's default session,
    which `boto3.client` uses, unless another is given) plays the faults."""
    import boto3

    if session is None:
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
    for service_id in _DYNAMODB_SERVICE_IDS:
        session.events.register(f"before-send.{service_id}", _answer_dynamodb)


async def handle(request: web.Request) -> web.Response:
    """GET: `{"faults": [...]}`; POST `{"faults": [...]}`: fail exactly those (the supervisor's)."""
    if request.method == "POST":
        body = await request.json()
        services = body.get("faults") if isinstance(body, dict) else None
        if not isinstance(services, list):
            return web.json_response({"message": 'expected {"faults": [service, ...]}'}, status=400)
        try:
            set_failing(services)
        except ValueError as error:
            return web.json_response({"message": str(error)}, status=400)
    return web.json_response({"faults": current()})

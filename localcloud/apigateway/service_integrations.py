"""API Gateway's non-proxy integrations on a WebSocket route, which answer without a function:

- MOCK: no backend. The request template (static: it only sets `statusCode`) gives the status.
- AWS, a service action (`arn:...:apigateway:<region>:dynamodb:action/Query`): API Gateway renders
  the request template, calls the action with the integration's role (`CredentialsArn`) and maps
  the answer. Locally: DynamoDB's actions, called once (no retry) through a boto3 client made from
  boto3's default session in the region's process, so that whatever that session plays (the
  local fault controls, the call counter) plays here too. A `ClientError` is the service's answer
  (its status and its error body); an SDK-side refusal of the request is DynamoDB's 400
  `ValidationException`; a call that cannot be made at all raises `IntegrationFailed` (API
  Gateway's `ExecutionError`: the client gets its bare "Internal server error" frame).

Either way the status selects the integration response (a `/regex/` key that matches it, else
`$default`) whose response template, rendered over the answer, is what a two-way route sends
back. Mapping templates are played as stack_definition/mapping_templates.py allows, and anything
beyond it is refused (`Unresolvable`) when the template is read (stack_definition/integrations.py)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping
from typing import Any

from stack_definition.cloudformation import Context
from stack_definition.integrations import AwsIntegration, Integration, MockIntegration, Responses
from stack_definition.mapping_templates import MappingTemplate

__all__ = ["IntegrationFailed", "ServiceAction", "bind"]

_DYNAMODB_ERROR_TYPE = "com.amazonaws.dynamodb.v20120810#{}"


class IntegrationFailed(Exception):
    """API Gateway could not call the integration (its ExecutionError)."""


def bind(integration: Integration, ctx: Context) -> MockIntegration | ServiceAction:
    """The integration in one region: a MOCK as it is; an AWS service action with its templates
    resolved with that region's stack."""
    if isinstance(integration, AwsIntegration):
        return ServiceAction(
            integration, ctx.region, integration.request_in(ctx), integration.responses_in(ctx)
        )
    return integration


class ServiceAction:
    """An AWS service integration in one region: for each message, the request template rendered,
    the action called, the selected response template rendered over its answer."""

    def __init__(
        self, spec: AwsIntegration, region: str, request: MappingTemplate, responses: Responses
    ) -> None:
        self._spec = spec
        self._region = region
        self._request = request
        self._responses = responses
        self._client: Any = None
        self._lock = threading.Lock()

    async def answer(self, context: Mapping[str, Any]) -> str | None:
        status, body = await asyncio.to_thread(self._call, self._request.render(context))
        return self._responses.answer(status, context, body)

    def _call(self, payload: str) -> tuple[int, Any]:
        """The service's status and answer (its error body on an error), as API Gateway gets them."""
        from botocore import xform_name
        from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

        try:
            parameters = json.loads(payload)
        except ValueError:  # the service would refuse the body
            return 400, {"__type": "SerializationException", "message": "the request body is not JSON"}
        try:
            answer = getattr(self._service_client(), xform_name(self._spec.action))(**parameters)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            message = error.response.get("Error", {}).get("Message", "")
            status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
            return status, {"__type": _DYNAMODB_ERROR_TYPE.format(code), "message": message}
        except ParamValidationError as error:  # botocore checks before sending; the service would say 400
            return 400, {"__type": _DYNAMODB_ERROR_TYPE.format("ValidationException"), "message": str(error)}
        except BotoCoreError as error:  # not even sent, or no answer: API Gateway's ExecutionError
            raise IntegrationFailed(f"{self._spec.logical_id}: {error}") from error
        answer.pop("ResponseMetadata", None)
        return 200, answer

    def _service_client(self) -> Any:
        """Made on first use, after the region's process has set up boto3's default session (a
        client copies the session's event handlers when it is made)."""
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                self._client = boto3.client(  # type: ignore[call-overload]
                    self._spec.service,
                    region_name=self._region,
                    config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=29),
                )
            return self._client

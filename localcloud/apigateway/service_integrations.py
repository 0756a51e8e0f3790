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
back. Mapping templates are played as mapping_templates.py allows, and anything beyond it is
refused (`Unresolvable`) when the stack starts."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stack_definition.cloudformation import Context, Unresolvable
from stack_definition.mapping_templates import MappingTemplate, literal_key, select_response

__all__ = ["AwsIntegration", "IntegrationFailed", "MockIntegration", "Responses", "ServiceAction"]

_ACTION = re.compile(
    r"arn:\$\{AWS::Partition\}:apigateway:\$\{AWS::Region\}:(?P<service>[a-z0-9-]+):action/(?P<action>\w+)"
)
_PLAYED_SERVICES = {"dynamodb"}
_DYNAMODB_ERROR_TYPE = "com.amazonaws.dynamodb.v20120810#{}"
_SUB_VARIABLE = re.compile(r"\$\{[^}]*\}")


class IntegrationFailed(Exception):
    """API Gateway could not call the integration (its ExecutionError)."""


def _text(value: Any) -> str:
    """A template value as written: a plain string, or an `Fn::Sub` string (its ${...} are
    CloudFormation's, resolved per region, not VTL)."""
    return str(value["Fn::Sub"] if isinstance(value, dict) and "Fn::Sub" in value else value)


def _template_of(owner: str, props: Mapping[str, Any], field_name: str) -> Any | None:
    templates = props.get(field_name) or {}
    return templates.get(literal_key(owner, props.get("TemplateSelectionExpression")))


@dataclass(frozen=True)
class Responses:
    """An integration's responses: (IntegrationResponseKey, response template) in template order."""

    templates: tuple[tuple[str, MappingTemplate | None], ...]

    @classmethod
    def of(cls, owner: str, responses: Iterable[Mapping[str, Any]], ctx: Context | None = None) -> Responses:
        parsed: list[tuple[str, MappingTemplate | None]] = []
        for response in responses:
            raw = _template_of(owner, response, "ResponseTemplates")
            text = (
                None
                if raw is None
                else _SUB_VARIABLE.sub("", _text(raw))
                if ctx is None
                else ctx.resolve(raw)
            )
            parsed.append(
                (
                    response["IntegrationResponseKey"],
                    None if text is None else MappingTemplate.parse(owner, str(text)),
                )
            )
        return cls(tuple(parsed))

    def answer(self, status: int, context: Mapping[str, Any], body: Any = None) -> str | None:
        """The body the selected integration response's template makes (None: no body)."""
        key = select_response(status, (k for k, _ in self.templates))
        template = dict(self.templates).get(key) if key is not None else None
        return None if template is None else template.render(context, body)


@dataclass(frozen=True)
class MockIntegration:
    status: int
    responses: Responses

    @classmethod
    def of(
        cls, logical_id: str, props: Mapping[str, Any], responses: Iterable[Mapping[str, Any]]
    ) -> MockIntegration:
        """`props`: the `AWS::ApiGatewayV2::Integration`'s; `responses`: its integration responses'."""
        request = _template_of(logical_id, props, "RequestTemplates")
        if request is None:
            raise Unresolvable(f"{logical_id}: a MOCK integration needs a request template")
        if "$" in _text(request):
            raise Unresolvable(f"{logical_id}: only static mapping templates (no VTL) are played locally")
        try:
            status = int(json.loads(_text(request))["statusCode"])
        except (ValueError, KeyError, TypeError) as error:
            raise Unresolvable(f"{logical_id}: its request template sets no statusCode") from error
        return cls(status=status, responses=Responses.of(logical_id, responses))

    def bind(self, ctx: Context) -> MockIntegration:
        return self

    async def answer(self, context: Mapping[str, Any]) -> str | None:
        return self.responses.answer(self.status, context)


@dataclass(frozen=True)
class AwsIntegration:
    """An AWS service action, as the template writes it (its templates unresolved until `bind`)."""

    logical_id: str
    service: str
    action: str
    request: Any  # the request template's template value
    responses: tuple[Mapping[str, Any], ...]  # the integration responses' properties

    @classmethod
    def of(
        cls, logical_id: str, props: Mapping[str, Any], responses: Iterable[Mapping[str, Any]]
    ) -> AwsIntegration:
        found = _ACTION.fullmatch(_text(props.get("IntegrationUri", "")))
        if found is None or found["service"] not in _PLAYED_SERVICES:
            raise Unresolvable(f"{logical_id}: only DynamoDB actions are played locally as AWS integrations")
        if str(props.get("IntegrationMethod", "")).upper() != "POST" or "CredentialsArn" not in props:
            raise Unresolvable(f"{logical_id}: an AWS service action is a POST with a CredentialsArn role")
        if "IntegrationResponseSelectionExpression" in props:
            raise Unresolvable(
                f"{logical_id}: API Gateway fixes the response selection of an AWS integration"
            )
        request = _template_of(logical_id, props, "RequestTemplates")
        if request is None:
            raise Unresolvable(f"{logical_id}: an AWS service action needs a request template")
        MappingTemplate.parse(logical_id, _SUB_VARIABLE.sub("", _text(request)))
        kept = tuple(responses)
        Responses.of(logical_id, kept)  # refused now, at stack start, if it cannot be played
        return cls(logical_id, found["service"], found["action"], request, kept)

    def bind(self, ctx: Context) -> ServiceAction:
        """The integration in one region: its templates resolved with that region's stack."""
        return ServiceAction(
            self,
            ctx.region,
            MappingTemplate.parse(self.logical_id, str(ctx.resolve(self.request))),
            Responses.of(self.logical_id, self.responses, ctx),
        )


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

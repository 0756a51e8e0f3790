"""API Gateway's non-proxy integrations on a WebSocket route as template.yaml writes them (MOCK, and
an AWS service action), read and checked when the template is read: anything the local stack
cannot play is refused (`Unresolvable`) then, not when a request comes. The MOCK integration
answers by itself; an AWS service action is played by localcloud (apigateway/service_integrations.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stack_definition.cloudformation import Context, Unresolvable
from stack_definition.mapping_templates import MappingTemplate, literal_key, select_response

__all__ = ["AwsIntegration", "Integration", "MockIntegration", "Responses"]

_ACTION = re.compile(
    r"arn:\$\{AWS::Partition\}:apigateway:\$\{AWS::Region\}:(?P<service>[a-z0-9-]+):action/(?P<action>\w+)"
)
_PLAYED_SERVICES = {"dynamodb"}
_SUB_VARIABLE = re.compile(r"\$\{[^}]*\}")


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

    def request_in(self, ctx: Context) -> MappingTemplate:
        """The request template in one region (its ${...} resolved with that region's stack)."""
        return MappingTemplate.parse(self.logical_id, str(ctx.resolve(self.request)))

    def responses_in(self, ctx: Context) -> Responses:
        return Responses.of(self.logical_id, self.responses, ctx)


Integration = MockIntegration | AwsIntegration

"""API Gateway's MOCK integration on a WebSocket route: no backend at all. The integration's
request template (chosen by its template selection expression) sets the status code; the
integration response whose key matches that status (`$default`, or a `/regex/`) gives, through
its own template, the body that a two-way route sends back to the client.

Only static templates are played: one that uses a variable (`$input`, `$context`...) would need
API Gateway's VTL engine, so reading it raises `Unresolvable` when the stack starts, not later."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from localcloud.cloudformation import Unresolvable

__all__ = ["MockIntegration"]


@dataclass(frozen=True)
class MockIntegration:
    status: int
    responses: tuple[tuple[str, str | None], ...]  # (IntegrationResponseKey, body template)

    @classmethod
    def of(
        cls, logical_id: str, props: Mapping[str, Any], responses: Iterable[Mapping[str, Any]]
    ) -> MockIntegration:
        """`props`: the `AWS::ApiGatewayV2::Integration`'s; `responses`: its integration responses'."""
        request = _selected(logical_id, props)
        if request is None:
            raise Unresolvable(f"{logical_id}: a MOCK integration needs a request template")
        try:
            status = int(json.loads(request)["statusCode"])
        except (ValueError, KeyError, TypeError) as error:
            raise Unresolvable(f"{logical_id}: its request template sets no statusCode") from error
        return cls(
            status=status,
            responses=tuple((r["IntegrationResponseKey"], _selected(logical_id, r)) for r in responses),
        )

    def answer(self) -> str | None:
        """The body of the integration response that matches the status ($default last), if any."""
        keys = sorted(self.responses, key=lambda response: response[0] == "$default")
        for key, body in keys:
            if key == "$default" or re.fullmatch(key.strip("/"), str(self.status)):
                return body
        return None


def _selected(logical_id: str, props: Mapping[str, Any]) -> str | None:
    """The template a static selection expression (`\\$default`, an escaped literal key) picks."""
    templates = props.get("RequestTemplates", props.get("ResponseTemplates"))
    if templates is None:
        return None
    expression = str(props.get("TemplateSelectionExpression", ""))
    if not expression.startswith("\\$") and "$" in expression:
        raise Unresolvable(f"{logical_id}: only a literal template selection expression is played locally")
    template = templates.get(expression.replace("\\$", "$"))
    if template is not None and "$" in template:
        raise Unresolvable(f"{logical_id}: only static mapping templates (no VTL) are played locally")
    return None if template is None else str(template)

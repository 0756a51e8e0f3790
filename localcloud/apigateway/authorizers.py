"""API Gateway's Lambda REQUEST authorizers, as a WebSocket API runs them on `$connect`.

- An identity source (`route.request.querystring.token`, `route.request.header.X`) that is
  missing or empty: 401, and the function is not invoked.
- The function fails with the error message `Unauthorized`: 401. Any other failure, or an answer
  that is not a policy with a principal: 500.
- A policy that does not allow `execute-api:Invoke` on the route's ARN (an explicit Deny wins):
  403.
- Otherwise the handshake goes on, and the answer's `context` plus its `principalId` become
  `requestContext.authorizer` of `$connect` and of every later event of the connection.

WebSocket APIs do not cache authorizer results: each handshake invokes the function."""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Mapping
from typing import Any

from localcloud.apigateway.events import authorizer_event
from localcloud.lambda_.runtime import LambdaRuntime, TooManyRequestsException
from stack_definition.template import RequestAuthorizer

log = logging.getLogger("authorizer")

_QUERY, _HEADER = "route.request.querystring.", "route.request.header."


_MESSAGES = {401: "Unauthorized", 403: "Forbidden", 500: "Internal Server Error"}


class Refused(Exception):
    """The handshake is refused with this status and API Gateway's own message."""

    def __init__(self, status: int) -> None:
        super().__init__(_MESSAGES[status])
        self.status = status


def _identity_present(source: str, event: Mapping[str, Any]) -> bool:
    if source.startswith(_QUERY):
        value = (event.get("queryStringParameters") or {}).get(source[len(_QUERY) :])
    else:
        name = source[len(_HEADER) :].lower()
        value = next((v for k, v in (event.get("headers") or {}).items() if k.lower() == name), None)
    return bool(value)


def _allows(policy: Any, method_arn: str) -> bool:
    """IAM's evaluation, as far as an authorizer's policy needs it: an explicit Deny of the
    route wins, else an Allow of it is needed. `*` and `?` are wildcards in actions and resources."""
    statements = policy.get("Statement", []) if isinstance(policy, dict) else []
    allowed = False
    for statement in statements if isinstance(statements, list) else [statements]:
        actions, resources = statement.get("Action", []), statement.get("Resource", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources = [resources] if isinstance(resources, str) else resources
        matches = any(fnmatch.fnmatchcase("execute-api:Invoke", a) for a in actions) and any(
            fnmatch.fnmatchcase(method_arn, r) for r in resources
        )
        if matches and statement.get("Effect") == "Deny":
            return False
        allowed = allowed or (matches and statement.get("Effect") == "Allow")
    return allowed


class LambdaRequestAuthorizer:
    def __init__(self, spec: RequestAuthorizer, runtime: LambdaRuntime, *, region: str) -> None:
        unknown = [s for s in spec.identity_sources if not s.startswith((_QUERY, _HEADER))]
        if unknown:
            raise ValueError(f"{spec.logical_id}: identity sources not played locally: {unknown}")
        self._spec = spec
        self._runtime = runtime
        self._region = region

    async def authorize(self, connect_event: Mapping[str, Any]) -> dict[str, Any]:
        """The connection's `requestContext.authorizer`, or `Refused`."""
        if not all(_identity_present(source, connect_event) for source in self._spec.identity_sources):
            raise Refused(401)
        event = authorizer_event(connect_event, region=self._region)
        try:
            answer = await self._runtime.invoke(self._spec.function, event)
        except Exception as error:
            if str(error) == "Unauthorized":  # the one error message API Gateway maps to 401
                raise Refused(401) from None
            if isinstance(error, TooManyRequestsException):
                log.warning("%s", error)  # throttled: refused with a 500 like any failure
            else:
                log.exception("%s failed", self._spec.function)
            raise Refused(500) from None
        if not isinstance(answer, dict) or not answer.get("principalId"):
            log.error("%s answered no principalId and policy", self._spec.function)
            raise Refused(500)
        context = answer.get("context") or {}
        if not isinstance(context, dict) or not all(
            isinstance(v, str | int | float | bool) for v in context.values()
        ):
            log.error(
                "%s answered a context that is not a map of strings, numbers and booleans",
                self._spec.function,
            )
            raise Refused(500)
        if not _allows(answer.get("policyDocument"), event["methodArn"]):
            raise Refused(403)
        return {**context, "principalId": answer["principalId"]}

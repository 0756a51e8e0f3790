"""API Gateway's mapping templates and selection expressions on a WebSocket API, as far as the
template uses them: a strict subset of API Gateway's VTL, refused at stack start beyond it.

A mapping template may hold, besides plain text:
- `$context.authorizer.<key>`: the `$connect` authorizer's context value, stringified;
- `$context.<key>` for the request context keys in CONTEXT_KEYS;
- `$input.path('<path>')` with a simple JSONPath (`$`, `.name`, `[index]`): the value there in the
  body being mapped (a string as it is, anything else as JSON).
A missing value renders as the empty string, as API Gateway renders it (so an empty `Items` list
gives `""`). Any other `$` reference, a `${...}` reference or a directive (`#set`, `#if`, `##`...)
raises `Unresolvable` when the template is read, not when a request comes.

A template selection expression must be a literal (`\\$default`: the key `$default`); an
integration response key is `$default` or a `/regex/` matched against the integration's status."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stack_definition.cloudformation import Unresolvable

__all__ = ["CONTEXT_KEYS", "MappingTemplate", "literal_key", "select_response"]

# The request context variables a template may name (WebSocket API mapping template reference).
CONTEXT_KEYS = frozenset(
    {
        "apiId",
        "connectionId",
        "domainName",
        "eventType",
        "extendedRequestId",
        "requestId",
        "routeKey",
        "stage",
    }
)
_PATH = r"\$(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*"
_REFERENCE = re.compile(
    r"\$context\.authorizer\.(?P<authorizer>[A-Za-z_][A-Za-z0-9_]*)"
    rf"|\$input\.path\('(?P<path>{_PATH})'\)"
    r"|\$context\.(?P<context>[A-Za-z_][A-Za-z0-9_]*)"
)
_DIRECTIVE = re.compile(r"#(?:[A-Za-z{*#])")
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


@dataclass(frozen=True)
class MappingTemplate:
    text: str

    @classmethod
    def parse(cls, owner: str, text: str) -> MappingTemplate:
        """The template, or `Unresolvable` if it uses anything beyond the subset above."""
        if _DIRECTIVE.search(text):
            raise Unresolvable(f"{owner}: VTL directives (#set, #if, ##...) are not played locally")
        rest = _REFERENCE.sub("", text)
        if "$" in rest:
            found = rest[rest.index("$") :][:40]
            raise Unresolvable(
                f"{owner}: only $context.authorizer.<key>, $context.<key> and "
                f"$input.path('$.a.b[0]') are played locally, not {found!r}"
            )
        for match in _REFERENCE.finditer(text):
            if match.group("context") is not None and match.group("context") not in CONTEXT_KEYS:
                raise Unresolvable(f"{owner}: $context.{match.group('context')} is not played locally")
        return cls(text)

    def render(self, context: Mapping[str, Any], body: Any = None) -> str:
        """`context`: the request context (its `authorizer` the authorizer's context); `body`:
        what `$input` reads (the integration's parsed answer, for a response template)."""

        def value(match: re.Match[str]) -> str:
            if match.group("authorizer") is not None:
                return _stringified((context.get("authorizer") or {}).get(match.group("authorizer")))
            if match.group("context") is not None:
                return _stringified(context.get(match.group("context")))
            return _stringified(_at(body, match.group("path")))

        return _REFERENCE.sub(value, self.text)


def _at(body: Any, path: str) -> Any:
    for name, index in _STEP.findall(path[1:]):
        if name and isinstance(body, dict):
            body = body.get(name)
        elif index and isinstance(body, list) and int(index) < len(body):
            body = body[int(index)]
        else:
            return None
    return body


def _stringified(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return (
        value
        if isinstance(value, str)
        else json.dumps(value)
        if isinstance(value, dict | list)
        else str(value)
    )


def literal_key(owner: str, expression: Any) -> str:
    """The key a literal template selection expression picks (`\\$default` is `$default`)."""
    text = str(expression or "\\$default")
    if "$" in text.replace("\\$", ""):
        raise Unresolvable(f"{owner}: only a literal template selection expression is played locally")
    return text.replace("\\$", "$")


def select_response(status: int, keys: Iterable[str]) -> str | None:
    """The integration response key that a status selects: the first `/regex/` that matches it,
    else `$default` (None when there is neither)."""
    keys = list(keys)
    for key in keys:
        if key != "$default" and re.fullmatch(key.strip("/"), str(status)):
            return key
    return "$default" if "$default" in keys else None

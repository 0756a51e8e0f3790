"""Just enough of CloudFormation to read template.yaml in tests: loading with the short-form tags,
parameter defaults, and the evaluation of conditions for a given region."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnlint.decode import decode  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
SAMCONFIG_PATH = ROOT / "samconfig.toml"
FUNCTIONS_DIR = ROOT / "functions"

Template = dict[str, Any]

# The types that exist only to give the chat a custom domain; every one must sit behind HasDomain.
DOMAIN_RESOURCE_TYPES = frozenset(
    {
        "AWS::CertificateManager::Certificate",
        "AWS::ApiGatewayV2::DomainName",
        "AWS::ApiGatewayV2::ApiMapping",
        "AWS::Route53::HealthCheck",
        "AWS::Route53::RecordSet",
    }
)


def load_template(path: Path = TEMPLATE_PATH) -> Template:
    """Load a template the way cfn-lint does (!Ref, !Sub, !GetAtt... become Ref, Fn::Sub, Fn::GetAtt)."""
    template, problems = decode(str(path))
    if problems or template is None:
        raise AssertionError(f"{path} does not load: {[str(p) for p in problems]}")
    return dict(template)


def resources_of_type(template: Template, *types: str) -> dict[str, dict[str, Any]]:
    return {name: resource for name, resource in template["Resources"].items() if resource["Type"] in types}


def refs_in(value: Any) -> Iterator[str]:
    """Every logical id that a value points at through Ref, Fn::GetAtt or a ${...} in Fn::Sub."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                yield inner
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).split(".")[0]
                yield str(target)
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                yield from _sub_names(str(text))
                yield from refs_in(inner[1] if isinstance(inner, list) else None)
            else:
                yield from refs_in(inner)
    elif isinstance(value, list):
        for item in value:
            yield from refs_in(item)


def unguarded_refs(template: Template, value: Any, condition: str) -> Iterator[str]:
    """Like refs_in, but skips the branch of an Fn::If that exists only when `condition` holds."""
    if isinstance(value, Mapping):
        if "Fn::If" in value:
            name, when_true, when_false = value["Fn::If"]
            if not condition_implies(template, name, condition):
                yield from unguarded_refs(template, when_true, condition)
            yield from unguarded_refs(template, when_false, condition)
        elif isinstance(value.get("Fn::Sub"), list):
            text, variables = value["Fn::Sub"]
            yield from (name for name in _sub_names(str(text)) if name not in variables)
            yield from unguarded_refs(template, variables, condition)
        elif {"Ref", "Fn::GetAtt", "Fn::Sub"} & set(value):
            yield from refs_in(value)
        else:
            for inner in value.values():
                yield from unguarded_refs(template, inner, condition)
    elif isinstance(value, list):
        for item in value:
            yield from unguarded_refs(template, item, condition)


def _sub_names(text: str) -> Iterator[str]:
    start = text.find("${")
    while start != -1:
        end = text.find("}", start)
        name = text[start + 2 : end]
        if not name.startswith("!"):
            yield name.split(".")[0]
        start = text.find("${", end)


@dataclass
class Stack:
    """The template as CloudFormation would see it in one region with the given parameters."""

    template: Template
    region: str
    overrides: dict[str, str] = field(default_factory=dict)
    stack_name: str = "resilient-chat"
    account: str = "123456789012"

    def parameter(self, name: str) -> Any:
        spec = self.template["Parameters"][name]
        raw = self.overrides.get(name, spec.get("Default"))
        if spec["Type"] == "CommaDelimitedList":
            return [part.strip() for part in str(raw).split(",")]
        return raw

    def resolve(self, value: Any) -> Any:
        """Resolve the intrinsics that conditions and region-dependent values use."""
        if isinstance(value, Mapping) and len(value) == 1:
            ((key, inner),) = value.items()
            if key == "Ref":
                if inner == "AWS::Region":
                    return self.region
                if inner in self.template["Parameters"]:
                    return self.parameter(inner)
                return {"Ref": inner}
            if key == "Fn::Select":
                index, items = inner
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::If":
                name, when_true, when_false = inner
                return self.resolve(when_true if self.condition(name) else when_false)
            if key == "Fn::Sub":
                text, variables = (inner, {}) if isinstance(inner, str) else inner
                return self._substitute(str(text), {k: self.resolve(v) for k, v in variables.items()})
        return value

    def _substitute(self, text: str, variables: dict[str, Any]) -> str:
        """Fn::Sub with this stack's parameters and pseudo parameters; a resource's ${Name} stays."""
        pseudo = {
            "AWS::Region": self.region,
            "AWS::StackName": self.stack_name,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if name in pseudo:
                return pseudo[name]
            if name in self.template["Parameters"]:
                return str(self.parameter(name))
            return match.group(0)

        return re.sub(r"\$\{([^}!]+)\}", value, text)

    def condition(self, name: str) -> bool:
        return self._evaluate(self.template["Conditions"][name])

    def _evaluate(self, expression: Any) -> bool:
        ((key, inner),) = expression.items()
        if key == "Fn::Equals":
            left, right = (self.resolve(side) for side in inner)
            return bool(left == right)
        if key == "Fn::Not":
            return not self._evaluate(inner[0])
        if key == "Fn::And":
            return all(self._evaluate(part) for part in inner)
        if key == "Fn::Or":
            return any(self._evaluate(part) for part in inner)
        if key == "Condition":
            return self.condition(inner)
        raise AssertionError(f"unsupported condition function {key}")

    def resources(self) -> dict[str, dict[str, Any]]:
        """The resources this stack would create."""
        return {
            name: resource
            for name, resource in self.template["Resources"].items()
            if "Condition" not in resource or self.condition(resource["Condition"])
        }


def condition_implies(template: Template, name: str, required: str) -> bool:
    """Whether condition `name` can only be true when condition `required` is true."""
    if name == required:
        return True
    expression = template["Conditions"][name]
    parts = expression.get("Fn::And", [])
    return any(
        isinstance(part, Mapping)
        and "Condition" in part
        and condition_implies(template, part["Condition"], required)
        for part in parts
    )

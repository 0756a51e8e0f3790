"""Just enough of CloudFormation to read template.yaml: the short-form tags, parameters, pseudo
parameters, conditions and the intrinsic functions the template uses. The one resolver of the
repository: the local stack and the template tests both read the template through it."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from stack_definition.repository import SAMCONFIG, TEMPLATE

Raw = dict[str, Any]


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, !GetAtt...) as their long forms."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix in ("Ref", "Condition"):
        return {suffix: value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_raw(path: Path = TEMPLATE) -> Raw:
    with path.open() as stream:
        document: Raw = yaml.load(stream, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    return document


def stack_name(path: Path = SAMCONFIG) -> str:
    """The stack's name, from samconfig.toml: `sam deploy` names every region's stack so."""
    with path.open("rb") as handle:
        name: str = tomllib.load(handle)["default"]["global"]["parameters"]["stack_name"]
    return name


class Unresolvable(ValueError):
    pass


_NO_VALUE = object()


def _is_intrinsic(key: str) -> bool:
    return key in ("Ref", "Condition") or key.startswith("Fn::")


def _is_intrinsic_value(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and _is_intrinsic(next(iter(value)))


def resources_of_type(template: Raw, *types: str) -> dict[str, dict[str, Any]]:
    return {name: resource for name, resource in template["Resources"].items() if resource["Type"] in types}


@dataclass
class Context:
    """The template as CloudFormation sees it in one stack: parameters (defaults, then the given
    ones), pseudo parameters, the resources' physical ids and attributes, and the conditions.

    Strict (the local stack), a value is resolved all the way down and an intrinsic without a
    value here raises Unresolvable. Partial (the template tests), only the intrinsic a value is
    (and the branch it chooses) is resolved, and one without a value here is left as written, so
    a test can assert what it points at."""

    template: Raw
    region: str
    stack_name: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    refs: Mapping[str, str] = field(default_factory=dict)  # logical id -> physical id
    attributes: Mapping[str, str] = field(default_factory=dict)  # "Logical.Attr" -> value
    partial: bool = False
    account_id: str = "123456789012"

    def parameter(self, name: str) -> Any:
        spec = self.template.get("Parameters", {})[name]
        value = self.overrides.get(name, spec.get("Default", ""))
        if spec.get("Type") == "CommaDelimitedList" and isinstance(value, str):
            return [part.strip() for part in value.split(",")]
        return value

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::StackName": self.stack_name,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.template.get("Parameters", {}):
            return self.parameter(name)
        if name in self.refs:
            return self.refs[name]
        raise Unresolvable(f"no value for Ref {name}")

    def resolve(self, value: Any) -> Any:
        if self.partial and not _is_intrinsic_value(value):
            return value
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if not _is_intrinsic_value(value):
            resolved = {k: self.resolve(v) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v is not _NO_VALUE}
        try:
            return self._intrinsic(value)
        except Unresolvable:
            if self.partial:
                return value
            raise

    def _intrinsic(self, value: dict[str, Any]) -> Any:
        ((key, arg),) = value.items()
        if value == {"Ref": "AWS::NoValue"}:
            return value if self.partial else _NO_VALUE
        if key == "Ref":
            return self.ref(arg)
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            extra = {name: self.resolve(v) for name, v in variables.items()}
            return re.sub(r"\$\{([^}!]+)\}", lambda m: self._sub_var(m.group(0), extra), text)
        if key == "Fn::GetAtt":
            return self._attribute(".".join(arg))
        if key == "Fn::If":
            name, yes, no = arg
            return self.resolve(yes if self.condition(name) else no)
        if key == "Fn::Select":
            index, items = self.resolve(arg[0]), self.resolve(arg[1])
            return self.resolve(items[int(index)])
        if key == "Fn::Join":
            parts = [self.resolve(v) for v in self.resolve(arg[1])]
            if any(isinstance(part, (dict, list)) for part in parts):
                raise Unresolvable(f"Fn::Join of {arg[1]!r}")
            return str(arg[0]).join(str(part) for part in parts)
        raise Unresolvable(f"{key} is not supported")

    def _sub_var(self, variable: str, extra: dict[str, Any]) -> str:
        """A `${name}`'s value; partial, one without a value here stays as written."""
        name = variable[2:-1]
        try:
            value = extra[name] if name in extra else self._attribute(name) if "." in name else self.ref(name)
        except Unresolvable:
            if self.partial:
                return variable
            raise
        return str(value)

    def _attribute(self, name: str) -> str:
        if name not in self.attributes:
            raise Unresolvable(f"no value for GetAtt {name}")
        return self.attributes[name]

    def condition(self, name: str) -> bool:
        return self._evaluate(self.template["Conditions"][name])

    def _evaluate(self, expression: Any) -> bool:
        ((key, arg),) = expression.items()
        if key == "Fn::Equals":
            return bool(self.resolve(arg[0]) == self.resolve(arg[1]))
        if key == "Fn::Not":
            return not self._evaluate(arg[0])
        if key == "Fn::And":
            return all(self._evaluate(part) for part in arg)
        if key == "Fn::Or":
            return any(self._evaluate(part) for part in arg)
        if key == "Condition":
            return self.condition(arg)
        raise Unresolvable(f"condition {key} is not supported")

    def resources(self) -> dict[str, dict[str, Any]]:
        """The resources this stack would create."""
        return {
            name: resource
            for name, resource in self.template["Resources"].items()
            if "Condition" not in resource or self.condition(resource["Condition"])
        }


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


def unguarded_refs(template: Raw, value: Any, condition: str) -> Iterator[str]:
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


def condition_implies(template: Raw, name: str, required: str) -> bool:
    """Whether condition `name` can only be true when condition `required` is true."""
    if name == required:
        return True
    parts = template["Conditions"][name].get("Fn::And", [])
    return any(
        isinstance(part, Mapping)
        and "Condition" in part
        and condition_implies(template, part["Condition"], required)
        for part in parts
    )

"""Hosts the template writes itself end in ${AWS::URLSuffix}, as AWS's own hosts do in every partition
(amazonaws.com in most, amazonaws.com.cn in China): a literal suffix breaks the stack there."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tests.template.cfn import Template

# Where AWS wants the service principal as written (IAM's `Service`, a Lambda permission's
# `Principal`), and free text: the suffix there is no host the stack connects to.
NOT_A_HOST = {"Service", "Principal", "Description", "AssertDescription"}


def _strings(node: Any, key: str = "") -> Iterator[tuple[str, str]]:
    """Every string in the template with the key it sits under (Fn::Sub texts included)."""
    if isinstance(node, str):
        yield key, node
    elif isinstance(node, dict):
        for name, value in node.items():
            yield from _strings(value, key if name.startswith("Fn::") else name)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item, key)


def test_given_the_template_then_every_host_it_writes_ends_in_the_partitions_url_suffix(
    template: Template,
) -> None:
    written = [
        (key, text)
        for section in ("Resources", "Outputs")
        for key, text in _strings(template[section])
        if "amazonaws.com" in text and key not in NOT_A_HOST
    ]
    assert written == []
    hosts = [text for _, text in _strings(template["Resources"]) if ".execute-api." in text]
    assert hosts, "the template names its APIs' own hosts (fan-out, health check, CSP)"
    assert all("${AWS::URLSuffix}" in text for text in hosts)

"""Settings every layer shares: powertools reads these when the handlers' modules are imported,
as Lambda sets them before the import. Also the hypothesis profiles of every property test."""

import os

import pytest
from hypothesis import settings

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "resilient-chat")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "ResilientChat")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")  # never wait on an instance metadata lookup

# CI (`.ci/run` sets CI=true) draws the same examples on every run, so a red build is a defect
# that anyone can reproduce, never a lottery; local runs keep drawing new ones to find defects.
# No deadline: the integration layer's examples make real calls to a moto server.
settings.register_profile("ci", derandomize=True, max_examples=200, deadline=None)
# derandomize is explicit: hypothesis itself derandomises whenever a CI variable is set, even CI=false.
settings.register_profile("dev", derandomize=False, max_examples=100, deadline=None)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "dev")
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every property test runs under the loaded profile: none may opt out of CI's
    derandomisation or draw fewer examples than it."""
    profile = settings.default
    for item in items:
        test = getattr(item, "obj", None)
        if not getattr(test, "is_hypothesis_test", False):
            continue
        own = test._hypothesis_internal_use_settings  # type: ignore[union-attr]
        if own.derandomize != profile.derandomize or own.max_examples < profile.max_examples:
            raise pytest.UsageError(
                f"{item.nodeid}: its @settings override the hypothesis profile "
                f"(derandomize={own.derandomize}, max_examples={own.max_examples}); drop them"
            )

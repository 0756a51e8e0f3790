"""The local two-region stack, started once per test session with short intervals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from localcloud.running import QUICK, running_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with running_stack(tmp_path_factory.mktemp("local-stack"), QUICK) as info:
        yield info

"""The local two-region stack, started once per test session with short intervals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stack_definition.local_stack import QUICK, running_stack

# The tests sign in far more guests from this one address, and send more guest messages into one
# room, than the template's guest limits allow; tests/e2e/test_limits.py runs its own stack with them.
GENEROUS_GUEST_LIMITS = (
    "GuestSignInsPerMinute=100000",
    "GuestSignInBurst=100000",
    "GuestMessagesPerSecondPerRoom=1000",
    "GuestRoomBurst=1000",
)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    options = [*QUICK, "--parameter-overrides", *GENEROUS_GUEST_LIMITS]
    with running_stack(tmp_path_factory.mktemp("local-stack"), options) as info:
        yield info

"""The supervisor's start-up guards: one live stack per state directory, and a port hint that
names ports which are free."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localcloud.stack import cli
from localcloud.stack.cli import free_base_port, taken_ports
from localcloud.stack.supervisor import ports_per_stack
from stack_definition.state import StackRunning, StateDir
from stack_definition.template import load_cached

PORTS_PER_STACK = ports_per_stack(load_cached())

HOST = "127.0.0.1"


@pytest.fixture
def listening() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_second_claim_on_a_live_stacks_state_dir_is_refused_and_touches_nothing(tmp_path: Path) -> None:
    info = json.dumps({"pid": 4242, "frontDoorUrl": "http://127.0.0.1:8700"})
    (tmp_path / "stack.json").write_text(info)
    (tmp_path / "us-east-1.stream-checkpoint.json").write_text('{"sequenceNumber": "7"}')
    with StateDir(tmp_path).claim():
        with (
            pytest.raises(StackRunning, match=r"pid 4242.*http://127\.0\.0\.1:8700"),
            StateDir(tmp_path).claim(),
        ):
            pass
        assert (tmp_path / "stack.json").read_text() == info
        assert (tmp_path / "us-east-1.stream-checkpoint.json").exists()


def test_a_state_dir_is_free_again_once_its_stack_has_ended(tmp_path: Path) -> None:
    with StateDir(tmp_path).claim():
        pass
    with StateDir(tmp_path).claim():
        pass


def test_a_taken_port_is_named(listening: int) -> None:
    assert taken_ports(HOST, listening)[0] == listening  # its neighbours may be anyone's


@pytest.fixture
def held_by_others(monkeypatch: pytest.MonkeyPatch) -> set[int]:
    """The machine's ports as the port check sees them, with the ports in this set held by other
    programs. Real ports near a bind(0) port are in the ephemeral range, where other connections
    come and go between one check and the next; these stay as the test sets them."""
    held: set[int] = set()
    monkeypatch.setattr(cli, "_bindable", lambda host, port: port not in held)
    return held


def test_the_suggested_ports_are_free_and_avoid_the_taken_one(held_by_others: set[int]) -> None:
    # Given a stack on the default ports, and the next thousand ports busy but for gaps
    # exactly one stack wide
    taken = 8700
    held_by_others.update(range(taken, taken + PORTS_PER_STACK))
    held_by_others.update(range(taken + PORTS_PER_STACK, taken + 1000, PORTS_PER_STACK + 1))
    # When the hint looks for other ports
    suggested = free_base_port(HOST, taken)
    # Then it names a whole set of free ones
    assert suggested != 0
    assert held_by_others.isdisjoint(range(suggested, suggested + PORTS_PER_STACK))


@given(
    taken=st.integers(1024, 65536 - PORTS_PER_STACK),
    busy=st.lists(st.tuples(st.integers(0, 2200), st.integers(1, 400)), max_size=8),
)
def test_a_suggestion_is_a_whole_free_set_of_ports_away_from_the_taken_ones_or_none(
    taken: int, busy: list[tuple[int, int]]
) -> None:
    # Given a stack at `taken`, and blocks of ports above it held by others
    held = {*range(taken, taken + PORTS_PER_STACK)}
    for start, length in busy:
        held.update(range(taken + start, taken + start + length))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, "_bindable", lambda host, port: port not in held)
        suggested = free_base_port(HOST, taken)
    # Then the hint names a stack's worth of ports all free, or none (--port 0)
    ports = range(suggested, suggested + PORTS_PER_STACK)
    assert suggested == 0 or (ports[-1] <= 65535 and held.isdisjoint(ports))

"""The supervisor's start-up guards: one live stack per state directory, and a port hint that
names ports which are free."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.cli import PORTS_PER_STACK, free_base_port, taken_ports
from localcloud.state import StackRunning, StateDir

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


def test_the_suggested_ports_are_free_and_avoid_the_taken_one(listening: int) -> None:
    suggested = free_base_port(HOST, listening)
    assert suggested != 0
    assert listening not in range(suggested, suggested + PORTS_PER_STACK)
    assert taken_ports(HOST, suggested) == []

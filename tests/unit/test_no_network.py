"""The unit layer's guard: no test in it reaches a network, not even loopback."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from tests.unit.conftest import NetworkBlocked


def test_a_tcp_connection_from_a_unit_test_fails_even_to_loopback() -> None:
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("127.0.0.1", 9), timeout=1)


def test_an_http_request_from_a_unit_test_fails_before_leaving_the_process() -> None:
    with pytest.raises(NetworkBlocked):
        urllib.request.urlopen("http://127.0.0.1:9/", timeout=1)


def test_a_udp_datagram_from_a_unit_test_fails() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, pytest.raises(NetworkBlocked):
        udp.sendto(b"x", ("127.0.0.1", 9))


def test_local_socket_pairs_still_work() -> None:
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"ping")
        assert right.recv(4) == b"ping"

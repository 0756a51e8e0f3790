"""Unit tests cannot reach the network: every internet socket's connect (TCP) and sendto (UDP)
fails with NetworkBlocked, loopback included, so a unit test that would need a server (or an
AWS endpoint a misconfigured client would find) fails at once instead of passing by luck.
Local socket pairs (AF_UNIX, used by asyncio's event loop) stay allowed."""

from __future__ import annotations

import socket
from typing import Any

import pytest

_INTERNET = (socket.AF_INET, socket.AF_INET6)


class NetworkBlocked(RuntimeError):
    pass


def _blocked(original: Any) -> Any:
    def guard(sock: socket.socket, *args: Any, **kwargs: Any) -> Any:
        if sock.family in _INTERNET:
            raise NetworkBlocked(f"unit tests cannot reach the network ({original.__name__} {args[:1]})")
        return original(sock, *args, **kwargs)

    return guard


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("connect", "connect_ex", "sendto"):
        monkeypatch.setattr(socket.socket, name, _blocked(getattr(socket.socket, name)))

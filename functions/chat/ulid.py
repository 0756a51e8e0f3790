"""ULIDs: 26 Crockford base32 characters, a 48-bit millisecond time then 80 random bits.

Clients make them, so the same message keeps the same key on every retry, in every region.
"""

from __future__ import annotations

import os
import time

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUES = {c: i for i, c in enumerate(ALPHABET)}
LENGTH = 26
_TIME_CHARS = 10
_MAX_TIME_MS = (1 << 48) - 1


def is_ulid(value: str) -> bool:
    """True for a canonical (upper-case) ULID whose time part fits in 48 bits."""
    return (
        len(value) == LENGTH
        and all(c in _VALUES for c in value)
        and value[0] <= "7"  # 26 base32 characters hold 130 bits; a ULID has 128
    )


def timestamp_ms(value: str) -> int:
    """The millisecond Unix time encoded in a ULID's first ten characters."""
    if not is_ulid(value):
        raise ValueError(f"not a ULID: {value!r}")
    ms = 0
    for c in value[:_TIME_CHARS]:
        ms = ms * 32 + _VALUES[c]
    return ms


def _encode(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, digit = divmod(number, 32)
        chars.append(ALPHABET[digit])
    return "".join(reversed(chars))


def new(ms: int | None = None) -> str:
    """A fresh ULID for the given millisecond time (now by default)."""
    ms = int(time.time() * 1000) if ms is None else ms
    if not 0 <= ms <= _MAX_TIME_MS:
        raise ValueError(f"time out of ULID range: {ms}")
    return _encode(ms, _TIME_CHARS) + _encode(int.from_bytes(os.urandom(10), "big"), 16)


def lowest(ms: int) -> str:
    """The smallest ULID of a millisecond: `after=lowest(t)` pages from time t on."""
    return _encode(ms, _TIME_CHARS) + "0" * 16

"""A fan-out page: the unit of work the stream handler queues for the workers (a few frames to
post, in order, to each of a few connections), its queue-message encoding, and how a room's
posts are cut into pages of a bounded number of posts (chat/fanout.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

# An SQS message (a page) holds at most 256 KiB. Frames take at most half of it, so that a page's
# connection ids (under 100 bytes each, at most `page_posts` of them) always fit in the rest.
MAX_PAGE_BYTES = 256 * 1024
MAX_FRAMES_BYTES = MAX_PAGE_BYTES // 2


@dataclass(frozen=True)
class Page:
    """A worker's unit of work: post these frames, in order, to each of these connections."""

    connections: tuple[str, ...]
    frames: tuple[bytes, ...]

    @property
    def posts(self) -> int:
        return len(self.connections) * len(self.frames)

    def encode(self) -> str:
        """The queue message's body. Frames are JSON texts and go in as they are (no escaping)."""
        ids = json.dumps(self.connections, separators=(",", ":"))
        frames = b",".join(self.frames).decode()
        return f'{{"connections":{ids},"frames":[{frames}]}}'

    @classmethod
    def decode(cls, body: str) -> Page:
        """Raises ValueError unless `body` is a page as `encode` writes it."""
        try:
            data = json.loads(body)
            connections = tuple(data["connections"])
            frames = tuple(frame_bytes(frame) for frame in data["frames"])
        except (ValueError, TypeError, KeyError, RecursionError) as error:
            raise ValueError(f"not a page: {error}") from error
        if not all(isinstance(c, str) for c in connections) or not connections or not frames:
            raise ValueError("not a page: empty, or a connection id that is not a string")
        return cls(connections, frames)


def frame_bytes(frame: object) -> bytes:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":")).encode()


def _frame_chunks(frames: Sequence[bytes], most: int) -> Iterator[tuple[bytes, ...]]:
    """Consecutive runs of at most `most` frames and MAX_FRAMES_BYTES (one frame is at most
    ~17 KB: 4,000 characters of text, 4 bytes each at worst, and the envelope)."""
    chunk: list[bytes] = []
    size = 0
    for frame in frames:
        if chunk and (size + len(frame) + 1 > MAX_FRAMES_BYTES or len(chunk) == most):
            yield tuple(chunk)
            chunk, size = [], 0
        chunk.append(frame)
        size += len(frame) + 1
    if chunk:
        yield tuple(chunk)


def plan_pages(
    connections: Sequence[str], frames: Sequence[bytes], page_posts: int, concurrency: int
) -> list[Page]:
    """Pages of at most `page_posts` posts each that together post every frame to every
    connection. A connection's frames are posted one after another, so a page holds at most
    `page_posts / concurrency` frames: its posts then keep every thread busy, and a page takes
    about that many rounds of posts however many messages the batch holds."""
    pages = []
    for chunk in _frame_chunks(frames, max(1, page_posts // concurrency)):
        per_page = max(1, page_posts // len(chunk))
        for start in range(0, len(connections), per_page):
            pages.append(Page(tuple(connections[start : start + per_page]), chunk))
    return pages

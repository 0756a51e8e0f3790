"""The SQS adapter of the page queue sends pages within SQS's limits per call and never drops one
silently."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chat.errors import StoreError
from chat.fanout_pages import Page
from chat.page_queue import MAX_BATCH_BYTES, SqsPageQueue


class FakeSqs:
    """send_message_batch as SQS answers it; refuses the bodies in `refuse` (each time listed)."""

    def __init__(self, refuse: dict[str, int] | None = None, error: str | None = None) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.refuse = refuse or {}
        self.error = error
        self.lock = threading.Lock()

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "no"}}, "SendMessageBatch")
        with self.lock:
            self.calls.append(Entries)
            failed = []
            for entry in Entries:
                if self.refuse.get(entry["MessageBody"], 0) > 0:
                    self.refuse[entry["MessageBody"]] -= 1
                    failed.append({"Id": entry["Id"], "Code": "InternalError", "SenderFault": False})
        return {"Successful": [], "Failed": failed}


def page(n: int, frame_bytes: int = 10) -> Page:
    return Page((f"c{n}",), (b'{"t":"' + b"x" * frame_bytes + b'"}',))


def sent_bodies(sqs: FakeSqs) -> list[str]:
    return sorted(entry["MessageBody"] for call in sqs.calls for entry in call)


def test_pages_go_out_ten_at_most_per_call_and_each_once() -> None:
    sqs = FakeSqs()
    pages = [page(n) for n in range(25)]
    SqsPageQueue(sqs, "url").send_pages(pages)  # type: ignore[arg-type]
    assert sorted(len(call) for call in sqs.calls) == [5, 10, 10]
    assert sent_bodies(sqs) == sorted(p.encode() for p in pages)


def test_a_call_never_carries_more_than_256_kib() -> None:
    sqs = FakeSqs()
    pages = [page(n, frame_bytes=100_000) for n in range(5)]
    SqsPageQueue(sqs, "url").send_pages(pages)  # type: ignore[arg-type]
    assert all(sum(len(e["MessageBody"].encode()) for e in call) <= MAX_BATCH_BYTES for call in sqs.calls)
    assert sent_bodies(sqs) == sorted(p.encode() for p in pages)


def test_a_refused_page_is_sent_again_once_then_the_send_fails() -> None:
    flaky, stubborn = page(1), page(2)
    sqs = FakeSqs(refuse={flaky.encode(): 1})
    SqsPageQueue(sqs, "url").send_pages([flaky, page(3)])  # type: ignore[arg-type]
    assert [len(call) for call in sqs.calls] == [2, 1]  # only the refused page again

    sqs = FakeSqs(refuse={stubborn.encode(): 2})
    with pytest.raises(StoreError, match="InternalError"):
        SqsPageQueue(sqs, "url").send_pages([stubborn])  # type: ignore[arg-type]


def test_an_unreachable_queue_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="NonExistentQueue"):
        SqsPageQueue(FakeSqs(error="AWS.SimpleQueueService.NonExistentQueue"), "url").send_pages([page(1)])  # type: ignore[arg-type]

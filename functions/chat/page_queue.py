"""The Amazon SQS adapter of the fan-out's page queue: the only module that knows SQS's calls
and errors. Pages go out in SendMessageBatch calls of at most 10 entries and 256 KiB (SQS's
limits per call; a page is at most 256 KiB too); entries SQS refuses inside a successful call
are sent once more, then fail."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from chat.aws_errors import AWS_ERRORS, store_error
from chat.errors import StoreError
from chat.fanout_pages import Page

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 256 * 1024
SENDERS = 8  # SendMessageBatch calls in flight at once


def _batches(bodies: Sequence[str]) -> Iterator[list[SendMessageBatchRequestEntryTypeDef]]:
    batch: list[SendMessageBatchRequestEntryTypeDef] = []
    size = 0
    for index, body in enumerate(bodies):
        length = len(body.encode())  # at most MAX_PAGE_BYTES: plan_pages sees to it
        if batch and (len(batch) == MAX_BATCH_ENTRIES or size + length > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append({"Id": str(index), "MessageBody": body})
        size += length
    if batch:
        yield batch


class SqsPageQueue:
    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def send_pages(self, pages: Sequence[Page]) -> None:
        batches = list(_batches([page.encode() for page in pages]))
        if len(batches) == 1:
            self._send(batches[0])
            return
        # A batch of 100 messages to a large room is a few hundred pages: the calls go out together.
        with ThreadPoolExecutor(max_workers=min(SENDERS, len(batches))) as pool:
            list(pool.map(self._send, batches))  # the first StoreError is raised here

    def _send(self, entries: list[SendMessageBatchRequestEntryTypeDef]) -> None:
        for _ in range(2):
            try:
                answer = self._client.send_message_batch(QueueUrl=self._url, Entries=entries)
            except AWS_ERRORS as error:
                raise store_error("SendMessageBatch", error) from error
            refused = {entry["Id"]: entry["Code"] for entry in answer.get("Failed", [])}
            if not refused:
                return
            entries = [entry for entry in entries if entry["Id"] in refused]
        raise StoreError("SendMessageBatch", ",".join(sorted(set(refused.values()))))

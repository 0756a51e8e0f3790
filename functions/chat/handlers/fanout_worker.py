"""Fan-out pages from the SQS page queue → WebSocket posts, with partial batch failures
(ReportBatchItemFailures): a page reported failed is delivered again after the queue's
visibility timeout, and moved to the DLQ after its maxReceiveCount."""

from __future__ import annotations

from typing import Any

from chat import clients
from chat.fanout import Page, post_page
from chat.observability import count, lambda_handler, logger
from chat.settings import get_settings


@lambda_handler()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = get_settings()
    failures = []
    for record in event.get("Records", []):
        message_id = record["messageId"]
        try:
            page = Page.decode(record["body"])
        except ValueError as bad:
            # Retrying cannot mend it: reported failed, it reaches the DLQ, where it is alarmed.
            logger.error("not a fan-out page", message_id=message_id, error=str(bad))
            failures.append(message_id)
            continue
        result = post_page(
            page,
            connections=clients.connection_store(),
            pusher=clients.pusher(),
            pages=clients.page_queue(),
            concurrency=settings.fanout_concurrency,
        )
        count("Deliveries", result.delivered)
        count("StaleConnectionsRemoved", result.gone)
        count("FailedDeliveries", result.failed_posts)
        count("FanoutConnectionsHandedBack", result.handed_back)
        for connection_id, error in result.kept_gone:
            logger.warning("cannot remove a gone connection", connection_id=connection_id, error=error)
        if result.retry:
            count("FanoutPagesFailed")
            logger.warning(
                "page failed: the queue delivers it again",
                message_id=message_id,
                receive_count=record.get("attributes", {}).get("ApproximateReceiveCount"),
                connections=len(page.connections),
                error=result.requeue_error,
            )
            failures.append(message_id)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}

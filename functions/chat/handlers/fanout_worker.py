"""Fan-out pages from the SQS page queue → WebSocket posts, with partial batch failures
(ReportBatchItemFailures): a page reported failed is delivered again after the queue's
visibility timeout, and moved to the DLQ after its maxReceiveCount. Posts start only while the
invocation has more than POSTING_MARGIN_SECONDS left; what the time ran out on goes back to the
queue as a smaller page and the page succeeds, before the timeout (past it, the queue would
deliver the whole page again)."""

from __future__ import annotations

from typing import Any

from chat.composition import fanout_service
from chat.fanout_pages import Page
from chat.observability import count, lambda_handler, logger


@lambda_handler()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
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
        result = fanout_service().post_page(page, remaining_ms=context.get_remaining_time_in_millis)
        count("Deliveries", result.delivered)
        count("StaleConnectionsRemoved", result.gone)
        count("FailedDeliveries", result.failed_posts)
        count("FanoutConnectionsHandedBack", result.handed_back)
        count("FanoutConnectionsOutOfTime", result.late)
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

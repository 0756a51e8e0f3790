"""DynamoDB stream → WebSocket fan-out, with partial batch failures (ReportBatchItemFailures)."""

from __future__ import annotations

from typing import Any

from chat import clients
from chat.fanout import fan_out, parse_records
from chat.observability import count, logger, metrics, traced
from chat.settings import get_settings


@logger.inject_lambda_context
@metrics.log_metrics
@traced
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = get_settings()
    result = fan_out(
        parse_records(event),
        connections=clients.connection_store(),
        pusher=clients.pusher(),
        region=settings.region,
        concurrency=settings.fanout_concurrency,
    )
    count("MessagesFannedOut", result.messages)
    count("Deliveries", result.delivered)
    count("StaleConnectionsRemoved", result.gone)
    count("FailedDeliveries", result.failed_posts)
    logger.info(
        "fan-out done",
        records=len(event.get("Records", [])),
        failed=len(result.failed),
        delivered=result.delivered,
        gone=result.gone,
    )
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in result.failed]}

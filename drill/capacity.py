"""Whether a drill asks the local stack for more than it can serve, from the capacity that
`make bench ARGS=capacity` measured on this machine (bench/results/capacity.json)."""

from __future__ import annotations

import json
from typing import Any

from stack_definition.repository import ROOT

# This machine's own measurement (make bench ARGS=capacity) when there is one, else the published
# one: files the benchmark writes, read here without importing it.
MEASURED_HERE = ROOT / ".local" / "bench" / "capacity.json"
MEASURED = ROOT / "bench" / "results" / "capacity.json"


def measured() -> list[dict[str, Any]] | None:
    """Messages per second one region serves, sustained, per room size; None if not measured."""
    try:
        source = MEASURED_HERE if MEASURED_HERE.exists() else MEASURED
        rows: list[dict[str, Any]] = json.loads(source.read_text())["rows"]
    except (FileNotFoundError, ValueError, KeyError):
        return None
    return sorted(rows, key=lambda row: row["recipients"])


def warnings(clients: int, rate: float, rows: list[dict[str, Any]] | None) -> list[str]:
    """After a failover one region serves every client, and each message goes to every client in
    the room: clients x rate messages per second, to rooms of `clients`. Compared with the
    measured room of that size or the next larger one; past the largest measured room, with its
    deliveries per second shared out."""
    if not rows:
        return []
    row = next((r for r in rows if r["recipients"] >= clients), rows[-1])
    serves = (
        row["messagesPerSecond"] if row["recipients"] >= clients else row["deliveriesPerSecond"] / clients
    )
    asks = clients * rate
    if asks <= serves:
        return []
    return [
        f"{clients} clients x {rate:g} messages/s ask one region, after the failover, for {asks:.0f} "
        f"messages/s to {clients} recipients ({asks * clients:.0f} deliveries/s); this machine's local "
        f"stack serves about {serves:.0f} messages/s to a room of {max(row['recipients'], clients)} "
        f"({MEASURED.name}, `make bench ARGS=capacity`): expect acks and deliveries to fall behind; "
        "lower --clients or --rate"
    ]

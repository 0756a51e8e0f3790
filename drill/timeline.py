"""The drill's timeline picture: each event of the report at its time, the clients' outages
under them (matplotlib, imported only when a picture is drawn)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def label_positions(times: list[float], gap: float) -> list[float]:
    """Where to write each event's label: at its time, pushed right until it is at least `gap`
    after the previous label, so that events at the same moment (detected and rerouted often are)
    never print over each other. `times` in order."""
    positions: list[float] = []
    for time in times:
        positions.append(max(time, positions[-1] + gap) if positions else time)
    return positions


def plot(report: dict[str, Any], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    clients = report["clients"]
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.45 * len(clients)))
    for row, client in enumerate(clients):
        ax.broken_barh([(0, report["duration_seconds"])], (row - 0.3, 0.6), color="#cfe8cf")
        for outage in client["outages"]:
            end = outage["end"] if outage["end"] is not None else report["duration_seconds"]
            ax.broken_barh([(outage["start"], end - outage["start"])], (row - 0.3, 0.6), color="#d9534f")
    colours = {
        "took_out": "black",
        "detected": "#f0ad4e",
        "rerouted": "#0275d8",
        "restore": "black",
        "recovered": "#5cb85c",
    }
    events = sorted((e for e in report["timeline"] if e["event"] in colours), key=lambda e: e["t"])
    # A rotated 8-point label is about 1.2% of a 10-inch axis wide.
    gap = max(report["duration_seconds"], 1.0) * 0.012
    for event, x in zip(events, label_positions([e["t"] for e in events], gap), strict=True):
        ax.axvline(event["t"], color=colours[event["event"]], linestyle="--", linewidth=1)
        ax.text(x, len(clients) - 0.4, event["event"], rotation=90, fontsize=8, va="top")
    ax.set_yticks(range(len(clients)), [f"{c['name']} ({c['location']})" for c in clients])
    ax.set_xlabel("seconds since the drill started (red: client without service)")
    ax.set_title(
        f"{report['region']} out by {report['mode']}: lost {report['lost']}, "
        f"shown twice {report['duplicated']}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

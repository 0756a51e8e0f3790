"""PNG figures from the results (matplotlib, Agg backend): fan-out time against room size, and
latency percentiles against the floor."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def fanout_figure(result: dict[str, Any], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {("domain", 64): "o-", ("domain", 1): "o--", ("handler", 64): "s-", ("handler", 1): "s--"}
    for (layer, concurrency), style in styles.items():
        rows = [r for r in result["rows"] if r["layer"] == layer and r["concurrency"] == concurrency]
        if rows:
            ax.plot(
                [r["connections"] for r in rows],
                [r["seconds"] for r in rows],
                style,
                label=f"{layer}, concurrency {concurrency}",
            )
    projected = [r for r in result["rows"] if "projectedSeconds" in r]
    if projected:
        ax.plot(
            [r["connections"] for r in projected],
            [r["projectedSeconds"] for r in projected],
            "D",
            color="green",
            fillstyle="none",
            label="handler, a CPU per invocation (projected)",
        )
    ax.axhline(1.0, color="red", linewidth=0.8, linestyle=":", label="target: 1,000 connections < 1 s")
    ax.plot([10_000], [2.0], "r_", markersize=14, label="target: 10,000 connections < 2 s")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("connections in the room")
    ax.set_ylabel("seconds per stream batch (median)")
    ax.set_title(f"Fan-out of one message, {int(result['postSeconds'] * 1000)} ms per post")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency_figure(result: dict[str, Any], path: Path) -> Path:
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), sharey=False)
    for ax, cross in zip(axes, (False, True), strict=True):
        rows = [r for r in result["rows"] if r["cross"] == cross]
        labels = [str(r["clients"]) for r in rows]
        width = 0.13
        for offset, quantile in enumerate(("p50", "p90", "p99")):
            xs = [i + (offset - 1) * width * 2 for i in range(len(rows))]
            ax.bar(xs, [r["latencyMs"][quantile] for r in rows], width, label=f"ours {quantile}")
            ax.bar(
                [x + width for x in xs],
                [r["floorMs"][quantile] for r in rows],
                width,
                label=f"floor {quantile}",
                alpha=0.5,
            )
        if not cross:
            ax.axhline(25, color="green", linestyle=":", linewidth=0.8, label="target p50 (50 clients)")
            ax.axhline(150, color="red", linestyle=":", linewidth=0.8, label="target p99 (50 clients)")
        ax.set_xticks(range(len(rows)), labels)
        ax.set_xlabel("clients in the room")
        ax.set_ylabel("send to receive, ms")
        regions, delay = result["regions"], result["replicationDelaySeconds"]
        cross_title = f"{regions['sender']} → {regions['crossReceivers']} (replication {delay} s)"
        ax.set_title(cross_title if cross else "same region")
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

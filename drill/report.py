"""The drill's report: figures computed from what the synthetic clients recorded, a summary a
person reads in a minute, and a timeline plot."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from drill.clients import SyntheticClient

IDLE_NOTICE_TARGET = 120.0  # target: an idle client notices a dead region within 2 minutes (p99)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _percentile(values: list[float], q: float) -> float | None:
    """Nearest rank: the smallest value with at least q% of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)], 2)


def _idle(clients: list[SyntheticClient], took_out: float, heartbeat: float | None) -> dict[str, Any]:
    """How long each idle client took to notice the outage (its first loss after the region was
    taken out) and to be back, caught up (that loss's end); clients whose connection never broke
    (their region kept serving them) are counted apart."""
    idle = [c for c in clients if c.heartbeat is not None]
    noticed, back, how = [], [], []
    for client in idle:
        loss = next((o for o in client.outages if o.start >= took_out), None)
        if loss is None:
            continue
        noticed.append(loss.start - took_out)
        how.append(loss.reason)
        if loss.end is not None:
            back.append(loss.end - took_out)
    return {
        "clients": len(idle),
        "heartbeat_seconds": heartbeat,
        "kept_their_connection": len(idle) - len(noticed),
        "noticed_by": {reason: how.count(reason) for reason in sorted(set(how))},
        "noticed_seconds": {"p50": _percentile(noticed, 50), "p99": _percentile(noticed, 99)},
        "back_seconds": {"p50": _percentile(back, 50), "p99": _percentile(back, 99)},
        "never_back": len(noticed) - len(back),
        "target_seconds": IDLE_NOTICE_TARGET,
    }


def build(
    *,
    mode: str,
    region: str,
    target: str,
    clients: list[SyntheticClient],
    events: list[dict[str, Any]],
    started: float,
    took_out: float,
    restored_at: float | None,
    undone: bool,
    recovery_wait: float,
    warnings: list[str],
    settings: dict[str, Any],
    ended: float,
) -> dict[str, Any]:
    def first(kind: str) -> float | None:
        return next((e["at"] for e in events if e["event"] == kind), None)

    detected, rerouted, recovered = first("detected"), first("rerouted"), first("recovered")
    acked: dict[str, tuple[float, str]] = {}
    for client in clients:
        acked.update(client.acked)
    sent = {message_id for client in clients for message_id in client.sent}
    lost = sorted({message_id for client in clients for message_id in acked if message_id not in client.seen})
    duplicated = sum(len(c.shown) - len(set(c.shown)) for c in clients)
    pushed_again = [
        {"client": c.name, "id": message_id, "deliveredBy": regions}
        for c in clients
        for message_id, regions in c.live_frames.items()
        if len(regions) > 1
    ]
    rejected = sum(len(c.rejected) for c in clients)
    unacked = len(sent) - len(acked) - rejected
    failures: list[str] = []
    if lost:
        failures.append(
            f"{len(lost)} acknowledged messages were not held by every client "
            f"{settings['settle_seconds']} s after the last send"
        )
    if duplicated:
        failures.append(f"{duplicated} messages shown twice")
    if unacked:
        failures.append(f"{unacked} messages never acknowledged: the stack did not answer them")
    if not undone:
        failures.append("could not undo every change: check the region by hand")
    if recovered is None:
        failures.append(
            f"{region} was not healthy and serving on its own endpoint "
            f"within {recovery_wait:.0f} s of the restore"
        )
    idle = _idle(clients, took_out, settings.get("heartbeat_seconds"))
    if (idle["noticed_seconds"]["p99"] or 0) > IDLE_NOTICE_TARGET:
        failures.append(
            f"idle clients noticed the outage in {idle['noticed_seconds']['p99']} s at p99 "
            f"(target {IDLE_NOTICE_TARGET:.0f} s)"
        )
    if idle["never_back"]:
        failures.append(f"{idle['never_back']} idle clients were not back by the end")
    if failures and warnings:
        failures.append("the drill asked for more than the stack can serve (see the warning)")
    delays = [
        client.seen[message_id]["at"] - acked_at
        for client in clients
        for message_id, (acked_at, accepted) in acked.items()
        if message_id in client.seen
        and client.seen[message_id]["via"] == "live"
        and client.seen[message_id]["region"] != accepted
    ]
    return {
        "mode": mode,
        "region": region,
        "target": target,
        "sent": len(sent),
        "acked": len(acked),
        "rejected": rejected,
        "unacked": unacked,
        "delivered_to_every_client": sum(all(m in c.seen for c in clients) for m in acked),
        "delivered_live": sum(v["via"] == "live" for c in clients for v in c.seen.values()),
        "recovered_from_history": sum(v["via"] == "history" for c in clients for v in c.seen.values()),
        "lost": len(lost),
        "lost_ids": lost[:20],
        "duplicated": duplicated,
        "redelivered_frames": sum(len(p["deliveredBy"]) - 1 for p in pushed_again),
        "redelivered": pushed_again[:20],
        "detect_seconds": round(detected - took_out, 2) if detected else None,
        "reroute_seconds": round(rerouted - took_out, 2) if rerouted else None,
        "recover_seconds": round(recovered - restored_at, 2) if recovered and restored_at else None,
        "restored": undone and recovered is not None,
        "undone": undone,
        "replication_delay_ms": {
            "p50": _ms(statistics.median(delays)) if delays else None,
            "max": _ms(max(delays)) if delays else None,
            "samples": len(delays),
        },
        "idle": idle,
        "clients": [
            {
                "name": c.name,
                "location": c.location,
                "idle": c.heartbeat is not None,
                "sent": len(c.sent),
                "without_service_seconds": round(c.outage_seconds(ended), 2),
                "outages": [
                    {
                        "start": round(o.start - started, 2),
                        "end": round(o.end - started, 2) if o.end else None,
                        "reason": o.reason,
                    }
                    for o in c.outages
                ],
                "regions": [r for _, r in c.connections],
            }
            for c in clients
        ],
        "timeline": [{**e, "t": round(e["at"] - started, 2)} for e in events],
        "settings": settings,
        "warnings": warnings,
        "verdict": "FAIL" if failures else "PASS",
        "failures": failures,
        "started_at": started,
        "took_out_at": round(took_out - started, 2),
        "restored_at": round(restored_at - started, 2) if restored_at else None,
        "duration_seconds": round(ended - started, 2),
    }


def summary(report: dict[str, Any]) -> str:
    def seconds(value: float | None) -> str:
        return "not seen" if value is None else f"{value:.1f} s"

    restored = (
        "yes"
        if report["restored"]
        else "changes undone, but the region was not back in time"
        if report["undone"]
        else "NO - check the region by hand"
    )
    worst = max((c["without_service_seconds"] for c in report["clients"]), default=0.0)
    lines = [
        f"Failover drill ({report['target']}): {report['region']} taken out by '{report['mode']}' "
        f"for {report['settings']['hold_seconds']} s  -> {report['verdict']}",
        f"  time to detect            {seconds(report['detect_seconds'])}",
        f"  new connections moved in  {seconds(report['reroute_seconds'])}",
        f"  back to healthy after     {seconds(report['recover_seconds'])} (from the restore)",
        f"  messages sent / acked     {report['sent']} / {report['acked']}"
        f"  (rejected {report['rejected']}, never acked {report['unacked']})",
        f"  delivered to every client {report['delivered_to_every_client']} "
        f"({report['recovered_from_history']} arrivals caught up from history)",
        f"  lost                      {report['lost']}",
        f"  shown twice               {report['duplicated']}"
        f"  (frames pushed twice: {report['redelivered_frames']})",
        f"  replication delay seen    p50 {report['replication_delay_ms']['p50']} ms, "
        f"max {report['replication_delay_ms']['max']} ms",
        f"  worst time without service {worst:.1f} s",
        _idle_line(report["idle"]),
        f"  restored                  {restored}",
        *(f"  why it failed: {reason}" for reason in report["failures"]),
        *(f"  warning: {warning}" for warning in report["warnings"]),
        "  clients:",
    ]
    for client in report["clients"]:
        regions = " -> ".join(dict.fromkeys(r or "?" for r in client["regions"]))
        lines.append(
            f"    {client['name']:<10} {client['location']:<10} {regions:<24} "
            f"without service {client['without_service_seconds']:.1f} s, sent {client['sent']}"
        )
    return "\n".join(lines)


def _idle_line(idle: dict[str, Any]) -> str:
    if not idle["clients"]:
        return "  idle clients              none"
    noticed, back = idle["noticed_seconds"], idle["back_seconds"]
    if noticed["p50"] is None:
        return (
            f"  idle clients              {idle['clients']}: none lost its connection "
            "(their regions kept serving them)"
        )
    return (
        f"  idle clients              {idle['clients']} (heartbeat {idle['heartbeat_seconds']} s): "
        f"noticed p50 {noticed['p50']} s, p99 {noticed['p99']} s; back p50 {back['p50']} s, "
        f"p99 {back['p99']} s; kept their connection {idle['kept_their_connection']}"
    )


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

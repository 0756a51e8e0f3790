"""The drill's report: figures computed from what the synthetic clients recorded, a summary a
person reads in a minute, and a timeline plot."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

from drill.clients import SyntheticClient

SENDER_TARGET = 10.0  # seconds from its first failed send until a healthy region acks it (p99)
LISTENER_TARGET = 60.0  # seconds from the fault until it is elsewhere and caught up (p99)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _percentile(values: list[float], q: float) -> float | None:
    """Nearest rank: the smallest value with at least q% of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)], 2)


@dataclass(frozen=True)
class Fault:
    region: str
    took_out: float
    restored_at: float  # or the end of the drill, if the restore never came
    fails: bool  # it breaks something (every fault but invert)
    acked: dict[str, tuple[float, str]]  # every acknowledged message: id -> (when, where)


def _served(client: SyntheticClient, fault: Fault) -> tuple[float, float | None] | None:
    """(from, served) for a client the fault reached, None for one it did not. A client is
    reached when it was in the region as a fault that breaks something began, or when it failed
    after the fault began.

    A sender: from its first failed send (or closed socket) after the fault, until a healthy
    region (another, or this one once restored) acknowledged one of its messages.
    A listener: from the fault until it had been shown every message acknowledged since the
    fault: the fault plus its longest wait for one of them, from the message's ack to its
    display. None for `served` if that never happened."""
    before = [r for at, r in client.connections if at <= fault.took_out]
    failed = [at for at, _ in client.failures if at >= fault.took_out]
    closed = [o.start for o in client.outages if o.start >= fault.took_out]
    if not (fault.fails and before and before[-1] == fault.region) and not failed and not closed:
        return None
    if client.rate > 0:
        start = min([*failed, *closed], default=fault.took_out)
        acks = [
            at
            for at, accepted in client.acked.values()
            if at >= start and (accepted != fault.region or at >= fault.restored_at)
        ]
        return start, min(acks, default=None)
    since = {m: at for m, (at, _) in fault.acked.items() if at >= fault.took_out}
    if any(m not in client.seen for m in since):
        return fault.took_out, None
    waits = [client.seen[m]["at"] - at for m, at in since.items()]
    return fault.took_out, fault.took_out + max([0.0, *waits])


def _group(clients: list[SyntheticClient], fault: Fault, target: float) -> dict[str, Any]:
    """A role's figures: how long those the fault reached took to be served by a healthy region,
    and the messages its clients lost or showed twice."""
    reached = {c.name: _served(c, fault) for c in clients}
    times = [span[1] - span[0] for span in reached.values() if span is not None and span[1] is not None]
    return {
        "clients": len(clients),
        "reached": sum(span is not None for span in reached.values()),
        "never_served": sum(span is not None and span[1] is None for span in reached.values()),
        "served_seconds": {
            "p50": _percentile(times, 50),
            "p99": _percentile(times, 99),
            "max": round(max(times), 2) if times else None,
        },
        "target_seconds": target,
        "lost": len({m for c in clients for m in fault.acked if m not in c.seen}),
        "duplicated": sum(len(c.shown) - len(set(c.shown)) for c in clients),
        "per_client": {
            name: None if span is None else round(span[1] - span[0], 2) if span[1] else "never"
            for name, span in reached.items()
        },
    }


def build(
    *,
    mode: str,
    fault: str | None = None,
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
    histories: dict[str, Any] | None = None,
    presence: dict[str, Any] | None = None,
) -> dict[str, Any]:
    fault = fault or mode

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
    drilled = Fault(region, took_out, restored_at or ended, fault != "invert", acked)
    roles = {
        role: _group([c for c in clients if c.role == role], drilled, target)
        for role, target in (("sender", SENDER_TARGET), ("listener", LISTENER_TARGET))
    }
    for role, group in roles.items():
        worst = group["served_seconds"]["p99"]
        if worst is not None and worst > group["target_seconds"]:
            failures.append(
                f"{role}s were served by a healthy region after {worst} s at p99 "
                f"(target {group['target_seconds']:.0f} s)"
            )
        if group["never_served"]:
            failures.append(f"{group['never_served']} {role}s were never served by a healthy region")
    if histories is not None and not histories["equal"]:
        failures.append(
            f"the regions' histories differ after the restore: {histories['messages']}"
            + (f", not read from {histories['unread']}" if histories.get("unread") else "")
        )
    if histories is not None and not histories.get("changes", {"ok": True})["ok"]:
        failures.append(f"an edit or delete is not in every region as asked: {histories['changes']['wrong']}")
    if presence is not None and not presence["equal"]:
        failures.append(
            f"the regions' presence is not the {presence['connected']} connected clients after the "
            f"restore: {_presence_faults(presence)}"
        )
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
        "fault": fault,
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
        "senders": roles["sender"],
        "listeners": roles["listener"],
        "histories": histories,
        "presence": presence,
        "clients": [
            {
                "name": c.name,
                "user": c.user_id,
                "location": c.location,
                "role": c.role,
                "leaves": [
                    {"at": round(at - started, 2), "region": left, "reason": why}
                    for at, left, why in c.leaves
                ],
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
        _role_line("senders", report["senders"], "acked by a healthy region, from their first failure,"),
        _role_line("listeners", report["listeners"], "shown every message since the fault, from the fault,"),
        _histories_line(report["histories"]),
        _presence_line(report.get("presence")),
        f"  restored                  {restored}",
        *(f"  why it failed: {reason}" for reason in report["failures"]),
        *(f"  warning: {warning}" for warning in report["warnings"]),
        "  clients:",
    ]
    for client in report["clients"]:
        regions = " -> ".join(dict.fromkeys(r or "?" for r in client["regions"]))
        lines.append(
            f"    {client['name']:<11} {client['location']:<10} {regions:<24} "
            f"without service {client['without_service_seconds']:.1f} s, sent {client['sent']}"
            + "".join(f"; left {e['region']} at {e['at']} s: {e['reason']}" for e in client["leaves"])
        )
    return "\n".join(lines)


def _role_line(name: str, group: dict[str, Any], served: str) -> str:
    head = f"  {name:<26}{group['clients']}"
    if not group["clients"]:
        return head
    losses = f"lost {group['lost']}, shown twice {group['duplicated']}"
    if not group["reached"]:
        return f"{head}, none reached by the fault; {losses}"
    seconds = group["served_seconds"]
    never = f", {group['never_served']} NEVER" if group["never_served"] else ""
    return (
        f"{head}, {group['reached']} reached by the fault: {served} p50 {seconds['p50']} s, "
        f"p99 {seconds['p99']} s, max {seconds['max']} s (target {group['target_seconds']:.0f} s)"
        f"{never}; {losses}"
    )


def _histories_line(histories: dict[str, Any] | None) -> str:
    if histories is None:
        return "  histories                 not compared"
    counts = ", ".join(f"{region} {n}" for region, n in histories["messages"].items())
    if histories.get("unread"):
        counts += f"; not read from {', '.join(histories['unread'])}"
    line = f"  histories                 {'equal' if histories['equal'] else 'DIFFER'} ({counts} messages)"
    changes = histories.get("changes")
    if changes is not None:
        verdict = "as asked in every region" if changes["ok"] else "NOT as asked"
        counted = f"{changes['edits']} edited, {changes['deletes']} deleted"
        line += f"\n  edits and deletes         {counted}: {verdict}"
    return line


def _presence_faults(presence: dict[str, Any]) -> str:
    """What each region got wrong, in a few words: "us-east-1 ghosts 1, count 7; eu-west-2 not read"."""
    said = []
    for region, verdict in presence["regions"].items():
        wrong = [f"{kind} {len(verdict[kind])}" for kind in ("missing", "ghosts", "doubled") if verdict[kind]]
        if verdict["count"] != presence["connected"]:
            wrong.append(f"count {verdict['count']}")
        if not verdict["exact"] and not wrong:
            wrong.append(f"{verdict['listed']} members listed")
        if wrong:
            said.append(f"{region} {', '.join(wrong)}")
    said += [f"{region} not read" for region in presence["unread"]]
    return "; ".join(said)


def _presence_line(presence: dict[str, Any] | None) -> str:
    head = "  presence                  "
    if presence is None:
        return head + "not checked"
    first = f"first read {presence['first_read_seconds']} s after the restore"
    if presence["equal"]:
        return (
            f"{head}equal: every region lists the {presence['connected']} connected clients, each "
            f"once, {presence['seconds']} s after the restore ({first})"
        )
    wrong = _presence_faults(presence)
    return f"{head}DIFFER from the {presence['connected']} connected clients: {wrong} ({first})"

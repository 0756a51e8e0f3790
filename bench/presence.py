"""Presence and typing (issue 27): the AWS calls of each presence event, counted as bench.cost
counts a message's (botocore in the local stack's region processes, LOCALCLOUD_COUNT_AWS_CALLS=1),
priced with bench.cost's prices; and the send-to-receive delay of `enter`, `leave` and `typing`
frames in the event's region and in the other, next to a message's in the same run.

A room holds `listeners` connections in each region. Each round a new user, in the first region:
1. enters (its first connection to the room: one membership write, replicated);
2. opens a second tab (a second connection: nothing global, the make-before-break reconnect's
   shape);
3. types (one typing item, replicated) and, at once, types again (dropped: within 2 s);
4. sends a message (not counted: its cross-region delay is the yardstick);
5. closes the second tab (nothing global), then the first (the leave: the membership's delete).

Each counted step starts from zeroed counters and ends once its frames have reached every
listener in both regions (or, when none should come, after QUIET_SECONDS) and the fan-outs have
returned. The regions' presence keepers beat on their own clock (a Query and a PutItem every 15 s,
chat/presence_keeper.py); their calls are counted apart (`schedule.*`, which bench.cost's
region_calls leaves out), but a beat that sees a region come or go pushes frames, whose posts
are counted where they land: a step during which any region beat is left out of the counts (its
delays are kept). The replicated writes, and the writes of the sparse index
`presence-region-index`, happen where no process of ours counts them: they are priced from the
design, and the frames that arrive in the other region show that the replication happened.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bench.chatclients import ChatClient, Tracker, close_all, connect_many, sign_in
from bench.common import keeper_beats, local_stack, summary_ms
from bench.cost import (
    BACKGROUND_POLLING,
    FANOUT_GB_SECONDS,
    POST,
    PRICES,
    PRICES_SOURCE,
    READ_UNIT_BYTES,
    SEND_GB_SECONDS,
    SQS_CHUNK_BYTES,
    item_bytes,
    region_calls,
    until_quiet,
)
from stack_definition.template import load_cached, region_names

TIMEOUT = 10.0
QUIET_SECONDS = 1.0  # a step after which no frame should come: how long we listen for one anyway
SETTLE_SECONDS = 0.3  # after the last frame: the fan-outs return
MESSAGE = "apigateway.WebSocketMessage"
FANOUT = "lambda.Invoke:FanoutFunction"
KEEPER = "lambda.Invoke:PresenceKeeperFunction"
WRITES = ("dynamodb.PutItem", "dynamodb.UpdateItem", "dynamodb.DeleteItem")
STEPS = ("enter", "secondTab", "typing", "droppedTyping", "closeSecondTab", "leave")
# Per step, the writes to the messages global table that no counter sees: (copies in each other
# region, index entries in every region). A membership is one item in `presence-region-index`.
UNCOUNTED_WRITES = {
    "enter": (1, 1),
    "leave": (1, 1),
    "typing": (1, 0),
}

# The chat's presence rules and the keeper's schedule (chat/presence.py, template.yaml).
LARGE_ROOM = 100
MEMBERS_READ = 4 * LARGE_ROOM + 1  # presence_stream.frames_for's bounded Query (Limit 401)
COUNT_FRAME_INTERVAL_SECONDS = 5
BEAT_SECONDS = 15
KEEPER_RUN_SECONDS = 45  # four beats, at 0, 15, 30 and 45 s of each minute's invocation
KEEPER_GB = 0.128
MONTH_MINUTES = 30 * 24 * 60
LARGE_ROOM_CONNECTIONS = 10_000
FANOUT_PAGE_POSTS = 1_000


def membership_item() -> dict[str, dict[str, str]]:
    """A membership as chat/presence_store.py writes it, through the first region (a guest's id,
    a 12-character name, an API Gateway connection id)."""
    from chat.presence import Member
    from chat.presence_store import membership_item as stored

    member = Member(
        room="general",
        user_id="g_0123456789ABCDEFGHJKMNPQRS",
        name="Ada Lovelace",
        region=region_names()[0],
        seq=1_795_000_000_001,
        connection_id="L0SM9cOFvHcCIhw=",
        since_ms=1_795_000_000_000,
    )
    return {name: {kind: str(raw) for kind, raw in value.items()} for name, value in stored(member).items()}


@dataclass
class Watch:
    """Frames the listeners should receive for one step: `kind` (enter, leave, typing) of `name`."""

    kind: str
    name: str
    expected: int
    started: float
    received: list[tuple[str, float]] = field(default_factory=list)  # (region, seconds after start)
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Frames:
    """The presence and typing frames the room's listeners receive, matched to the watched step."""

    def __init__(self) -> None:
        self.watch: Watch | None = None
        self.unexpected: list[dict[str, Any]] = []  # frames of the round's user no step waited for
        self.subject = ""  # the round's user: frames of earlier users (their counts) are not ours
        self.started = time.perf_counter()

    def observer(self, region: str) -> Callable[[ChatClient, dict[str, Any], float], None]:
        def observe(_: ChatClient, frame: dict[str, Any], now: float) -> None:
            kind = frame.get("event") if frame.get("type") == "presence" else "typing"
            name = frame.get("user", {}).get("name")
            watch = self.watch
            if watch is not None and (kind, name) == (watch.kind, watch.name):
                watch.received.append((region, now - watch.started))
                if len(watch.received) >= watch.expected:
                    watch.done.set()
            elif name == self.subject:
                at = round(now - self.started, 2)
                self.unexpected.append({"region": region, "secondsIntoRun": at, "frame": frame})

        return observe


@dataclass
class Step:
    name: str
    calls: dict[str, dict[str, int]]
    clean: bool  # no keeper beat during it
    delays: list[tuple[str, float]]


class Room:
    def __init__(self, info: dict[str, Any], listeners: int) -> None:
        self.info = info
        self.regions = region_names()
        self.home = self.regions[0]
        self.urls = {r: info["regions"][r]["managementUrl"] for r in self.regions}
        self.room = f"presence-{uuid.uuid4().hex[:12]}"
        self.listeners = listeners
        self.frames = Frames()
        self.tracker = Tracker()
        self.clients: list[ChatClient] = []

    async def open(self) -> None:
        for region in self.regions:
            self.clients += await connect_many(
                self.info["regions"][region],
                self.room,
                self.listeners,
                self.tracker,
                watched=region != self.home,  # a message's receipts: the other regions' only
                prefix=f"listener-{region}-",
                observer=self.frames.observer(region),
            )

    async def _calls(self) -> dict[str, dict[str, int]]:
        counted = {}
        for region in self.regions:
            calls = await asyncio.to_thread(region_calls, self.urls[region], "DELETE")
            counted[region] = {
                op: n for op, n in sorted(calls.items()) if not op.startswith(BACKGROUND_POLLING)
            }
        return counted

    async def step(
        self, name: str, act: Callable[[], Awaitable[Any]], *, frame: str | None, subject: str
    ) -> Step:
        """Count one step: `act`, then its `frame` at every listener in every region (None: no
        frame should come; we listen for QUIET_SECONDS)."""
        await until_quiet(list(self.urls.values()), settle=SETTLE_SECONDS, within=TIMEOUT)
        beats = await asyncio.to_thread(keeper_beats, self.info)
        await self._calls()  # zero the counters
        watch = None
        if frame is not None:
            watch = Watch(frame, subject, self.listeners * len(self.regions), time.perf_counter())
            self.frames.watch = watch
        await act()
        if watch is not None:
            await asyncio.wait_for(watch.done.wait(), TIMEOUT)
            self.frames.watch = None
        else:
            await asyncio.sleep(QUIET_SECONDS)
        await asyncio.sleep(SETTLE_SECONDS)
        calls = await self._calls()
        clean = beats == await asyncio.to_thread(keeper_beats, self.info) and not any(
            KEEPER in c for c in calls.values()
        )
        return Step(name, calls, clean, watch.received if watch else [])

    async def message_delay(self, sender: ChatClient, text: str) -> list[float]:
        """A message's send-to-receive at the other regions' listeners (not counted)."""
        from chat import ulid

        message_id = ulid.new()
        entry = self.tracker.expect(message_id, self.listeners * (len(self.regions) - 1))
        await sender.send(message_id, text)
        await asyncio.wait_for(entry.done.wait(), TIMEOUT)
        await asyncio.sleep(SETTLE_SECONDS)
        return [t - entry.sent for t in entry.received]

    async def round(self, index: int) -> tuple[list[Step], list[float]]:
        region = self.info["regions"][self.home]
        user = f"typist-{index}-{uuid.uuid4().hex[:6]}"
        self.frames.subject = user
        token = await sign_in(region, user)
        tabs: list[ChatClient] = []

        async def open_tab() -> None:
            tab = await ChatClient.connect(region, self.room, user, self.tracker, watched=False, token=token)
            tabs.append(tab)

        steps = [await self.step("enter", open_tab, frame="enter", subject=user)]
        steps.append(await self.step("secondTab", open_tab, frame=None, subject=user))
        steps.append(await self.step("typing", tabs[0].typing, frame="typing", subject=user))
        steps.append(await self.step("droppedTyping", tabs[0].typing, frame=None, subject=user))
        delays = await self.message_delay(tabs[0], f"presence round {index}")
        steps.append(await self.step("closeSecondTab", tabs[1].close, frame=None, subject=user))
        steps.append(await self.step("leave", tabs[0].close, frame="leave", subject=user))
        return steps, delays

    async def close(self) -> None:
        await close_all(self.clients)


async def measure(info: dict[str, Any], listeners: int, rounds: int) -> dict[str, Any]:
    room = Room(info, listeners)
    await room.open()
    steps: list[Step] = []
    message: list[float] = []
    try:
        await room.round(-1)  # warm-up, not reported: the functions' first imports
        room.frames.unexpected.clear()
        for index in range(rounds):
            done, received = await room.round(index)
            steps += done
            message += received
    finally:
        await room.close()
    home = room.home
    counted = {name: [s for s in steps if s.name == name] for name in STEPS}
    calls = {
        name: _mean([s.calls for s in samples if s.clean], room.regions) for name, samples in counted.items()
    }

    def delays(kind: str, same_region: bool) -> list[float]:
        return [t for s in counted[kind] for r, t in s.delays if (r == home) == same_region]

    latency = {
        kind: {"otherRegion": summary_ms(delays(kind, False)), "sameRegion": summary_ms(delays(kind, True))}
        for kind in ("enter", "leave", "typing")
    } | {"message": {"otherRegion": summary_ms(message)}}
    cross_p50 = latency["message"]["otherRegion"]["p50"]
    return {
        "listenersPerRegion": listeners,
        "rounds": rounds,
        "stepsCounted": {name: sum(s.clean for s in samples) for name, samples in counted.items()},
        "stepsLeftOutForAKeeperBeat": {
            name: sum(not s.clean for s in samples) for name, samples in counted.items()
        },
        "calls": calls,
        "unexpectedFrames": room.frames.unexpected,
        "latencyMs": latency,
        "ratioToMessageP50": {
            kind: round(latency[kind]["otherRegion"]["p50"] / cross_p50, 2)
            for kind in ("enter", "leave", "typing")
        },
        "dollarsPerMillion": {name: dollars(name, c) for name, c in calls.items()},
    }


def _mean(samples: list[dict[str, dict[str, int]]], regions: tuple[str, ...]) -> dict[str, dict[str, float]]:
    if not samples:
        return {r: {} for r in regions}
    ops = {(r, op) for sample in samples for r in sample for op in sample[r]}
    return {
        r: {
            op: round(statistics.fmean(sample[r].get(op, 0) for sample in samples), 2)
            for rr, op in sorted(ops)
            if rr == r
        }
        for r in regions
    }


def dollars(step: str, calls: dict[str, dict[str, float]]) -> dict[str, Any]:
    """$ per million of one step, by line, from its counted calls in every region (each write
    under 1 KB: one write unit, a failed conditional one too; each Query or GetItem of these small
    items: half a read unit, eventually consistent, or one, strongly), plus the writes no counter
    sees: the messages table's copies in the other regions and the sparse index's entries."""
    p = PRICES
    regions = len(calls)
    every = list(calls.values())
    functions = {op for c in every for op in c if op.startswith("lambda.")}
    invocations = {op: sum(c.get(op, 0) for c in every) for op in functions}
    fanouts = invocations.get(FANOUT, 0)
    others = sum(invocations.values()) - fanouts
    copies, index = UNCOUNTED_WRITES.get(step, (0, 0))
    counted_writes = sum(c.get(op, 0) for c in every for op in WRITES)
    lines = {
        "websocketMessages": sum(c.get(MESSAGE, 0) for c in every) * p["websocketMessagePerMillion"],
        "lambdaRequests": (fanouts + others) * p["lambdaRequestPerMillion"],
        "lambdaCompute": (fanouts * FANOUT_GB_SECONDS + others * SEND_GB_SECONDS)
        * p["lambdaGbSecondArm64"]
        * 1e6,
        "dynamodbWrites": counted_writes * p["dynamodbWriteRequestUnitPerMillion"],
        "dynamodbReplicatedWrites": copies * (regions - 1) * p["dynamodbWriteRequestUnitPerMillion"],
        "dynamodbIndexWrites": index * regions * p["dynamodbWriteRequestUnitPerMillion"],
        "dynamodbReads": sum(0.5 * c.get("dynamodb.Query", 0) + c.get("dynamodb.GetItem", 0) for c in every)
        * p["dynamodbReadRequestUnitPerMillion"],
    }
    return {
        "writeUnits": counted_writes + copies * (regions - 1) + index * regions,
        "fanoutInvocations": fanouts,
        "posts": sum(c.get(POST, 0) for c in every),
        "lines": {k: round(v, 3) for k, v in lines.items()},
        "total": round(sum(lines.values()), 3),
    }


def presence_share(per_million: dict[str, dict[str, Any]]) -> dict[str, float]:
    """What presence adds to a connect and a close: the first connection's cost less a second
    tab's (the same `$connect` but nothing global), the last close's less the second tab's."""
    return {
        "enter": round(per_million["enter"]["total"] - per_million["secondTab"]["total"], 3),
        "leave": round(per_million["leave"]["total"] - per_million["closeSecondTab"]["total"], 3),
    }


def large_room(regions: int) -> dict[str, Any]:
    """A 10,000-connection room (every connection a different user, spread evenly over the
    regions), from the rules rather than a run: per enter or leave, each region's fan-out reads the
    beats and at most MEMBERS_READ memberships and asks the room's count limiter (a conditional
    UpdateItem, regional); at most once per COUNT_FRAME_INTERVAL_SECONDS per region the limiter
    admits a `count` frame, which reads every membership (a paged Query: the whole room) and
    posts to every connection there (in pages of FANOUT_PAGE_POSTS through the page queue)."""
    p = PRICES
    members = LARGE_ROOM_CONNECTIONS
    per_region = LARGE_ROOM_CONNECTIONS // regions
    size = item_bytes(membership_item())

    def rru(items: int) -> float:
        return max(1, math.ceil(items * size / READ_UNIT_BYTES)) * 0.5

    per_event_region = {
        "invocations": 1,
        "readUnits": rru(MEMBERS_READ) + 0.5,  # + the beats
        "limiterWrites": 1,
        "posts": 0,
    }
    per_event = {
        "websocketMessages": 0.0,
        "lambda": regions
        * (p["lambdaRequestPerMillion"] + FANOUT_GB_SECONDS * p["lambdaGbSecondArm64"] * 1e6),
        "dynamodbWrites": (1 + (regions - 1) + regions + regions) * p["dynamodbWriteRequestUnitPerMillion"],
        "dynamodbReads": regions * per_event_region["readUnits"] * p["dynamodbReadRequestUnitPerMillion"],
    }
    pages = math.ceil(per_region / FANOUT_PAGE_POSTS)
    count_frame = {  # one region's, in dollars
        "readUnits": rru(members),
        "posts": per_region,
        "pages": pages,
        "dollars": round(
            (
                per_region * p["websocketMessagePerMillion"]
                + rru(members) * p["dynamodbReadRequestUnitPerMillion"]
                + pages * (p["lambdaRequestPerMillion"] + FANOUT_GB_SECONDS * p["lambdaGbSecondArm64"] * 1e6)
                + 3 * pages * math.ceil(80 * FANOUT_PAGE_POSTS / SQS_CHUNK_BYTES) * p["sqsRequestPerMillion"]
            )
            / 1e6,
            5,
        ),
    }
    per_hour = 3600 // COUNT_FRAME_INTERVAL_SECONDS
    return {
        "connections": LARGE_ROOM_CONNECTIONS,
        "connectionsPerRegion": per_region,
        "members": members,
        "membershipItemBytes": size,
        "perEventPerRegion": per_event_region,
        "dollarsPerMillionEvents": {
            "lines": {k: round(v, 3) for k, v in per_event.items()},
            "total": round(sum(per_event.values()), 3),
        },
        "countFramePerRegion": count_frame,
        "countFramesPerHourPerRegionAtMost": per_hour,
        "countFrameDollarsPerHourAtMost": round(per_hour * count_frame["dollars"] * regions, 2),
    }


def keeper_month() -> dict[str, Any]:
    """One region's presence keeper for a month, whatever its connections: an invocation a minute
    of 128 MB that lives ~45 s (it sleeps between beats, and Lambda bills the sleep), four beats
    each a Query of the beats and a PutItem of its beat, copied to every other region (a beat is
    small: one write unit, half a read unit)."""
    p = PRICES
    regions = len(region_names())
    invocations = MONTH_MINUTES
    beats = MONTH_MINUTES * 60 // BEAT_SECONDS
    lines = {
        "lambdaRequests": invocations * p["lambdaRequestPerMillion"] / 1e6,
        "lambdaCompute": invocations * KEEPER_RUN_SECONDS * KEEPER_GB * p["lambdaGbSecondArm64"],
        "dynamodbWrites": beats * regions * p["dynamodbWriteRequestUnitPerMillion"] / 1e6,
        "dynamodbReads": (beats + invocations) * 0.5 * p["dynamodbReadRequestUnitPerMillion"] / 1e6,
    }
    return {
        "invocationsPerMonth": invocations,
        "beatsPerMonth": beats,
        "writeUnitsPerMonth": beats * regions,  # its beat and the copies in the other regions
        "dollarsPerRegionMonth": {k: round(v, 4) for k, v in lines.items()}
        | {"total": round(sum(lines.values()), 2)},
        "note": "the hourly repair (a Query of the region's memberships, a GetItem per member) is left "
        "out: it grows with the region's members, ~1 read unit per member an hour",
    }


def run(quick: bool = False) -> dict[str, Any]:
    listeners, rounds = (2, 3) if quick else (10, 30)
    with local_stack(replication_delay=0.05, env={"LOCALCLOUD_COUNT_AWS_CALLS": "1"}) as info:
        time.sleep(1.0)  # every region's keeper beats once at start: each then counts the others live
        result = asyncio.run(measure(info, listeners, rounds))
    per_million = result["dollarsPerMillion"]
    other = {kind: result["latencyMs"][kind]["otherRegion"] for kind in ("enter", "leave", "typing")}
    template = load_cached()
    return result | {
        "quick": quick,
        "prices": PRICES | {"source": PRICES_SOURCE},
        "presenceShare": presence_share(per_million),
        "largeRoom": large_room(len(region_names())),
        "keeper": keeper_month(),
        "assumptions": {
            "fanoutGbSecondsPerInvocation": FANOUT_GB_SECONDS,
            "handlerGbSecondsPerInvocation": SEND_GB_SECONDS,
            "replicationDelaySeconds": info["settings"]["replicationDelaySeconds"],
            "stack": template.stack_name,
        },
        "target": {
            "text": "enter, leave and typing shown in the other region within 2 s (p99); a dropped "
            "typing event and a second tab invoke no fan-out",
            "met": all(s["p99"] < 2000 for s in other.values())
            and per_million["droppedTyping"]["fanoutInvocations"] == 0
            and per_million["secondTab"]["fanoutInvocations"] == 0,
        },
    }


def table(result: dict[str, Any]) -> list[str]:
    lines = [f"{'step':<15} {'region':<12} {'calls':<86} {'$/M':>8}"]
    for step in STEPS:
        money = result["dollarsPerMillion"][step]["total"]
        for index, (region, calls) in enumerate(result["calls"][step].items()):
            shown = ", ".join(
                f"{op.split('.')[-1].removeprefix('Invoke:')} {n:g}"
                for op, n in calls.items()
                if op != MESSAGE
            )
            lines.append(
                f"{step if index == 0 else '':<15} {region:<12} {shown:<86} "
                + (f"{money:>8.2f}" if index == 0 else "")
            )
    share = result["presenceShare"]
    lines.append(f"presence's share: enter ${share['enter']:.2f}/M, leave ${share['leave']:.2f}/M")
    lines.append("delay, other region ms   p50     p99   (same region p50)  ratio to a message's p50")
    for kind in ("enter", "leave", "typing"):
        latency = result["latencyMs"][kind]
        lines.append(
            f"{kind:<22} {latency['otherRegion']['p50']:>6.1f} {latency['otherRegion']['p99']:>7.1f}"
            f"   ({latency['sameRegion']['p50']:>6.1f})        {result['ratioToMessageP50'][kind]:.2f}"
        )
    message = result["latencyMs"]["message"]["otherRegion"]
    lines.append(f"{'message':<22} {message['p50']:>6.1f} {message['p99']:>7.1f}")
    large = result["largeRoom"]
    lines.append(
        f"10,000-connection room: ${large['dollarsPerMillionEvents']['total']:.2f}/M events (reads bounded to"
        f" {MEMBERS_READ} memberships per region), plus count frames: at most"
        f" {large['countFramesPerHourPerRegionAtMost']}/h per region,"
        f" ${large['countFrameDollarsPerHourAtMost']:.2f}/h at most in all"
    )
    keeper = result["keeper"]["dollarsPerRegionMonth"]
    lines.append(f"keeper: ${keeper['total']:.2f} per region-month, whatever the connections")
    lines.append(f"unexpected frames: {len(result['unexpectedFrames'])}")
    return lines

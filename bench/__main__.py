"""`make bench`: run the benchmarks, write <name>.json and the figures, print a summary.

python -m bench                     # all of them (several minutes), into .local/bench/
python -m bench latency cost        # some of them
python -m bench --quick             # seconds: what CI runs (tests/bench)
python -m bench --publish           # into bench/results/ and docs/: the published figures
python -m bench capacity latency --regions us-east-1,eu-west-2,ap-northeast-1 --region ap-northeast-1

A run replaces the published figures (bench/results/*.json, which docs/ quote and the drill reads,
and docs/*.png) only with --publish: a quick or partial run must never overwrite them by accident.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import capacity, changes, coldstart, cost, fanout, idle, latency, plots, presence
from bench.common import CHOSEN, RESULTS, SCRATCH, write_result
from stack_definition.repository import ROOT
from stack_definition.template import load_cached, region_names

Runner = Callable[[bool], dict[str, Any]]
BENCHMARKS: dict[str, tuple[Runner, Callable[[dict[str, Any]], list[str]]]] = {
    "latency": (latency.run, latency.table),
    "fanout": (fanout.run, fanout.table),
    "coldstart": (coldstart.run, coldstart.table),
    "cost": (cost.run, cost.table),
    "idle": (idle.run_idle, idle.idle_table),
    "capacity": (capacity.run, capacity.table),
    "changes": (changes.run, changes.table),
    "presence": (presence.run, presence.table),
}
FIGURES = {"fanout": plots.fanout_figure, "latency": plots.latency_figure}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes and few repetitions, for CI")
    parser.add_argument(
        "--publish",
        action="store_true",
        help="write into bench/results/ and copy the figures into docs/ (the published figures)",
    )
    parser.add_argument("--out", type=Path, help="where the JSON results and figures go instead")
    parser.add_argument(
        "--regions",
        default=None,
        help="the local stack's regions for capacity and latency (ReplicaRegions; the others run the "
        "template's two)",
    )
    parser.add_argument("--region", help="the region capacity and latency measure in (default: the first)")
    args = parser.parse_args(argv)
    try:
        args.regions = args.regions or ",".join(region_names())
        running = load_cached().with_parameters({"ReplicaRegions": args.regions}).check_regions()
    except ValueError as error:
        parser.error(str(error))
    if (args.region or running[0]) not in running:
        parser.error(f"--region {args.region} is not one of --regions {args.regions}")
    CHOSEN.running, CHOSEN.measured = tuple(running), args.region or running[0]
    if args.publish and CHOSEN.stack() != region_names():
        parser.error("--publish publishes the template's own regions: not with --regions")
    if args.publish and (args.quick or args.out):
        parser.error("--publish writes full runs into bench/results/: not with --quick or --out")
    out: Path = RESULTS if args.publish else args.out or SCRATCH
    names = args.names or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    summary: list[str] = []
    targets: list[tuple[str, dict[str, Any]]] = []
    for name in names:
        run, table = BENCHMARKS[name]
        print(f"== {name}{' (quick)' if args.quick else ''}", flush=True)
        started = time.perf_counter()
        result = run(args.quick)
        result["wallSeconds"] = round(time.perf_counter() - started, 1)
        path = write_result(name, result, out)
        lines = table(result)
        print("\n".join(lines), flush=True)
        summary += [f"== {name} ({result['wallSeconds']} s) -> {path}", *lines]
        targets.append((name, result["target"]))
        if name in FIGURES:
            figure = FIGURES[name](result, out / f"{name}.png")
            if args.publish:
                shutil.copyfile(figure, ROOT / "docs" / figure.name)
    print("\n== summary")
    print("\n".join(summary))
    if not args.publish:
        print(f"\n(written to {out}; the published bench/results/ is unchanged: --publish replaces it)")
    print("\n== targets")
    for name, target in targets:
        state = "not measured" if target.get("measured") is False else ("met" if target["met"] else "MISSED")
        print(f"{name:<10} {state:<13} {target['text']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

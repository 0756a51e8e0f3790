"""`make bench`: run the benchmarks, write bench/results/<name>.json and the figures, print a summary.

python -m bench                 # all of them (several minutes)
python -m bench latency cost    # some of them
python -m bench --quick         # seconds: what CI runs (tests/bench)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import capacity, coldstart, cost, fanout, idle, latency, plots
from bench.common import RESULTS, ROOT, write_result

Runner = Callable[[bool], dict[str, Any]]
BENCHMARKS: dict[str, tuple[Runner, Callable[[dict[str, Any]], list[str]]]] = {
    "latency": (latency.run, latency.table),
    "fanout": (fanout.run, fanout.table),
    "coldstart": (coldstart.run, coldstart.table),
    "cost": (cost.run, cost.table),
    "idle": (idle.run_idle, idle.idle_table),
    "capacity": (capacity.run, capacity.table),
}
FIGURES = {"fanout": plots.fanout_figure, "latency": plots.latency_figure}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes and few repetitions, for CI")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON results and figures go")
    parser.add_argument(
        "--no-docs", action="store_true", help="do not copy the figures into docs/ (a full run does)"
    )
    args = parser.parse_args(argv)
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
        path = write_result(name, result, args.out)
        lines = table(result)
        print("\n".join(lines), flush=True)
        summary += [f"== {name} ({result['wallSeconds']} s) -> {path}", *lines]
        targets.append((name, result["target"]))
        if name in FIGURES:
            figure = FIGURES[name](result, args.out / f"{name}.png")
            if not args.quick and not args.no_docs and args.out == RESULTS:
                shutil.copyfile(figure, ROOT / "docs" / figure.name)
    print("\n== summary")
    print("\n".join(summary))
    print("\n== BRIEF section 7 targets")
    for name, target in targets:
        state = "not measured" if target.get("measured") is False else ("met" if target["met"] else "MISSED")
        print(f"{name:<10} {state:<13} {target['text']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

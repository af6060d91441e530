"""`python -m bench [--quick] [--repeat N] [--only a,b] [--backlog-files N] [--history-runs a,b,c] [--keep-homes]`.

Runs the scenarios, writes JSON and Markdown, then deletes the scenarios' temporary homes.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import HOMES, remove_homes
from bench.report import markdown
from bench.scenarios import SCENARIOS, Sizes

# Packages none of ours needs that a library imports at start when they happen to be installed, so a
# machine that has them starts the daemon slower than a fresh install: httpcore imports trio (60-70 ms).
STRAYS = ("trio",)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario; medians are reported")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--out", type=Path, default=Path("bench/results"), help="folder for results")
    parser.add_argument("--overhead-files", type=int, help="files of the overhead and history scenarios (2,000)")
    parser.add_argument("--backlog-files", type=int, help="files of the large backlog (default 10,000)")
    parser.add_argument("--history-runs", help="recorded runs before the history scenario, e.g. 0,100000,1000000")
    parser.add_argument(
        "--keep-homes", action="store_true",
        help="leave the scenarios' homes in the temporary folder (a series of benches deletes them once, at its end)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    sizes = Sizes.quick() if args.quick else Sizes()
    if args.overhead_files:
        sizes.overhead_files = args.overhead_files
    if args.backlog_files:
        sizes.backlog_files = args.backlog_files
    if args.history_runs:
        sizes.history_runs = tuple(int(n) for n in args.history_runs.split(","))
    names = [n for n in args.only.split(",") if n] or list(SCENARIOS)
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; choose from {', '.join(SCENARIOS)}")
    try:
        results = _run(names, sizes, args.repeat)
    finally:
        if args.keep_homes:
            print(f"homes kept: {' '.join(map(str, HOMES))}", file=sys.stderr)
        else:
            remove_homes()
    document = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": _cpus(),
            "platform": platform.platform(),
            "strays": [name for name in STRAYS if importlib.util.find_spec(name) is not None],
        },
        "sizes": vars(sizes),
        "repeat": args.repeat,
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(document, indent=2))
    (args.out / "latest.md").write_text(markdown(document))
    print(markdown(document))
    return 0


def _run(names: list[str], sizes: Sizes, repeat: int) -> dict[str, dict]:
    results: dict[str, dict] = {}
    for name in names:
        runs = []
        for n in range(repeat):
            started = time.monotonic()
            runs.append(SCENARIOS[name](sizes))
            took = time.monotonic() - started
            print(f"{name} {n + 1}/{repeat}: {_brief(runs[-1])} ({took:.0f}s)", file=sys.stderr)
        results[name] = {"median": _medians(runs), "runs": runs}
    return results


def _medians(runs: list[dict]) -> dict[str, float]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def _brief(figures: dict) -> str:
    return ", ".join(f"{k}={v:.3g}" for k, v in figures.items())


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    sys.exit(main())

"""A run's function calls, counted: a measure of the daemon's own work that the machine's load cannot move.

`python -m bench.calls [--runs 300] [--warm 50] [--dashboard] [--out FILE] [--compare FILE]` starts
the overhead scenario's daemon (the instant stand-in; classify, route, write; two workers) with a
profile hook in each of its threads (`bench/calls_hook/sitecustomize.py`), lets `--warm` runs
pass, then counts every Python function called (by code object) and every C function over the
next `--runs` runs, and prints the calls a run: in all, by module, and the functions called most.
`--out` keeps the counts as JSON; `--compare` prints them beside counts kept from another tree or
setting (the side given first is the kept one).

CPU per run on a shared machine moves by a third from one half hour to the next (BENCHMARKS.md);
these counts do not, except where a thread's lag changes its work: watchdog pairs a rename's two
events by scanning a queue as long as its thread lags behind (80 to 180 calls a run).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path

from bench.harness import BenchHome, Daemon, free_port, remove_homes, wait_until
from bench.scenarios import CLASSIFY_WORKFLOW, DOC, standin

HOOK = Path(__file__).with_name("calls_hook")

Key = tuple[str, str, str, int]  # ("py" or "c", file or module, name, first line)


def count(runs: int, warm: int, dashboard: bool) -> Counter[Key]:
    """The calls the daemon makes over `runs` runs of the overhead scenario, after `warm` runs."""
    home = BenchHome()
    home.workflow("bench", CLASSIFY_WORKFLOW.format(name="bench", folder="Inbox"))
    out = home.root / "calls.json"
    path = os.pathsep.join(p for p in (str(HOOK), os.environ.get("PYTHONPATH", "")) if p)
    env = {"PYTHONPATH": path, "BENCH_CALLS_OUT": str(out)}
    if dashboard:
        env["GRISTMILL_HTTP"] = f"127.0.0.1:{free_port()}"
    with standin("--slots", "4") as url:
        daemon = Daemon(home, url, concurrency=2, env=env)
        try:
            daemon.wait_ready(timeout=120)
            _drop(home, range(warm))
            wait_until(lambda: home.finished() >= warm, 300, f"{warm} warm-up runs")
            daemon.proc.send_signal(signal.SIGUSR1)
            wait_until(Path(f"{out}.on").exists, 30, "the count to start")
            _drop(home, range(warm, warm + runs))
            wait_until(lambda: home.finished() >= warm + runs, 600, f"{runs} counted runs")
            daemon.proc.send_signal(signal.SIGUSR2)
            wait_until(out.exists, 30, "the counts")
        finally:
            daemon.stop()
    return Counter({(kind, where, name, line): n for kind, where, name, line, n in json.loads(out.read_text())})


def _drop(home: BenchHome, numbers: range) -> None:
    # Each file's own text: a copy of an earlier one would be skipped as a duplicate, not run.
    for n in numbers:
        home.drop(f"doc-{n:05d}.txt", DOC.format(n=n))


def module(key: Key) -> str:
    """Where a function lives: a C function's module, a library's top package, or our file."""
    kind, where, _, _ = key
    if kind == "c":
        return f"C {where or 'methods'}"
    for marker in ("site-packages/", "dist-packages/", f"python{sys.version_info[0]}.{sys.version_info[1]}/"):
        if marker in where:
            return where.split(marker, 1)[1].split("/", 1)[0].removesuffix(".py")
    parts = Path(where).parts
    return "/".join(parts[parts.index("daemon") :]) if "daemon" in parts else where


def report(counts: Counter[Key], runs: int, before: Counter[Key] | None = None, top: int = 25) -> str:
    """Calls a run, in all, by module and by function; with `before`, the two side by side."""
    sides = [before, counts] if before is not None else [counts]

    def total(kind: str) -> str:
        return " → ".join(f"{sum(n for k, n in side.items() if k[0] == kind) / runs:,.0f}" for side in sides)

    def rows(group) -> list[str]:
        grouped = [Counter() for _ in sides]
        for side, into in zip(sides, grouped, strict=True):
            for key, n in side.items():
                into[group(key)] += n
        first, last = grouped[0], grouped[-1]
        # One side: the most called first; two: the largest changes first.
        order = sorted(set(first) | set(last), key=lambda g: -(abs(last[g] - first[g]) if before else last[g]))
        return ["  " + "  ".join(f"{c[g] / runs:8.1f}" for c in grouped) + f"  {g}" for g in order[:top]]

    return "\n".join([
        f"Python calls a run: {total('py')}; C calls a run: {total('c')} ({runs} runs)",
        "by module:", *rows(module),
        "by function:", *rows(lambda k: f"{module(k)} {k[2]}" + (f":{k[3]}" if k[0] == "py" else "")),
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.calls", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300, help="runs counted (300)")
    parser.add_argument("--warm", type=int, default=50, help="runs before the count starts (50)")
    parser.add_argument("--dashboard", action="store_true", help="the dashboard and /metrics on")
    parser.add_argument("--out", type=Path, help="keep the counts here (JSON)")
    parser.add_argument("--compare", type=Path, help="counts kept earlier by --out, shown beside these")
    parser.add_argument("--top", type=int, default=25, help="rows of each table (25)")
    args = parser.parse_args(argv)
    try:
        counts = count(args.runs, args.warm, args.dashboard)
    finally:
        remove_homes()
    if args.out:
        args.out.write_text(json.dumps({"runs": args.runs, "counts": [[*k, n] for k, n in counts.items()]}))
    before = None
    if args.compare:
        kept = json.loads(args.compare.read_text())
        before = Counter(
            {(kind, where, name, line): n * args.runs / kept["runs"] for kind, where, name, line, n in kept["counts"]}
        )
    print(report(counts, args.runs, before, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())

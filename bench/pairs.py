"""Two trees side by side: the overhead scenario run by both at once, their ratio taken per pair.

`python -m bench.pairs TREE_A TREE_B [--pairs 6] [--files 1500] [--warm 50]` starts, for each pair,
two stand-ins and two daemons at the same time, A's from TREE_A and B's from TREE_B (each tree put
first on the daemon's PYTHONPATH), lets `--warm` runs of each pass, then drops `--files` files into
both inboxes in turn (the side that gets each file first alternates from pair to pair) and prints
each side's runs/s and daemon CPU a run and B ÷ A; at the end the medians of B ÷ A.

Why at the same time: run one after the other, the same code's CPU a run moves by ±15 % within
minutes on this shared machine (BENCHMARKS.md), more than most single changes save. Run together,
both sides meet the same minute of the host: the same tree against itself gave B ÷ A within
0.97–1.02 (CPU) and 0.98–1.02 (runs/s) over four pairs. What it cannot show is what depends on
how busy the process is on its own: each daemon here gets about half the machine, so a spare
worker (`daemon/engine/spares.py`) that stands aside above 0.75 of a CPU never does. The issue's
own figures stay the bench's (`python -m bench`), one daemon at a time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from contextlib import ExitStack

from bench.harness import BenchHome, Daemon, remove_homes, wait_until
from bench.scenarios import CLASSIFY_WORKFLOW, DOC, standin


def one_pair(trees: dict[str, str], files: int, warm: int, first: str) -> dict[str, tuple[float, float]]:
    """(runs/s, CPU ms a run) of each side, measured together."""
    with ExitStack() as stack:
        sides: dict[str, tuple[BenchHome, Daemon]] = {}
        for side, tree in trees.items():
            url = stack.enter_context(standin("--slots", "4"))
            home = BenchHome()
            home.workflow("bench", CLASSIFY_WORKFLOW.format(name="bench", folder="Inbox"))
            daemon = Daemon(home, url, concurrency=2, env={"PYTHONPATH": tree})
            stack.callback(daemon.stop)
            sides[side] = home, daemon
        for _, daemon in sides.values():
            daemon.wait_ready(timeout=300)
        for n in range(warm):
            for home, _ in sides.values():
                home.drop(f"warm-{n:05d}.txt", DOC.format(n=n))
        wait_until(lambda: all(home.finished() >= warm for home, _ in sides.values()), 600, f"{warm} warm-up runs")
        cpu = {side: daemon.cpu() for side, (_, daemon) in sides.items()}
        order = sorted(sides, key=lambda side: side != first)
        started = time.time()
        for n in range(files):
            for side in order:
                sides[side][0].drop(f"doc-{n:05d}.txt", DOC.format(n=n))
        done: dict[str, float] = {}

        def finished() -> bool:
            for side, (home, daemon) in sides.items():
                if side not in done and home.finished() >= warm + files:
                    done[side] = daemon.cpu()
            return len(done) == len(sides)

        wait_until(finished, 900, f"{files} runs on each side")
        return {
            side: (files / (max(home.finish_times(warm).values()) - started), (done[side] - cpu[side]) * 1000 / files)
            for side, (home, _) in sides.items()
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pairs", description=__doc__.split("\n\n")[0])
    parser.add_argument("tree_a")
    parser.add_argument("tree_b")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--files", type=int, default=1500)
    parser.add_argument("--warm", type=int, default=50)
    args = parser.parse_args(argv)
    trees = {"A": args.tree_a, "B": args.tree_b}
    cpu_ratios, rate_ratios = [], []
    try:
        for n in range(args.pairs):
            got = one_pair(trees, args.files, args.warm, first="AB"[n % 2])
            (rate_a, cpu_a), (rate_b, cpu_b) = got["A"], got["B"]
            cpu_ratios.append(cpu_b / cpu_a)
            rate_ratios.append(rate_b / rate_a)
            sides = f"A {rate_a:.0f} runs/s, {cpu_a:.2f} ms a run; B {rate_b:.0f} runs/s, {cpu_b:.2f} ms a run"
            print(f"pair {n + 1}: {sides}; B ÷ A: CPU {cpu_ratios[-1]:.3f}, runs/s {rate_ratios[-1]:.3f}", flush=True)
    finally:
        remove_homes()  # together, at the end: deletions would weigh on the next pair's new files
    print(f"median B ÷ A over {args.pairs} pairs: CPU a run {statistics.median(cpu_ratios):.3f}, "
          f"runs/s {statistics.median(rate_ratios):.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

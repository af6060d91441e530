"""`python -m tests.mutation [MODULE…] [--jobs N] [--fresh] [--limit N] [--sample N --seed S] [--report FILE] …`.

Writes the mutants (mutmut), then per module: a clean run of its tests (must pass), mutmut's forced
failure (must fail: the trampolines are reached, in subprocesses too), then every mutant not yet
killed. Prints the kill rate per module; `--report FILE` also writes it as Markdown with each
surviving mutant's diff. `--sample N` measures a module that is not run in full on N of its mutants drawn
at random (`--seed`, so the same N again), and reports the kill rate of the sample with its 95 % interval.
Runs at the lowest CPU priority (nice 19). Not part of CI: see TESTING.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tests.mutation import plan, report

console = Console(stderr=True)


def main() -> int:
    args = _parser().parse_args()
    os.nice(19)  # never starve the other work on the machine
    chosen = [m for m in plan.modules() if not args.modules or any(want in m.path for want in args.modules)]
    if not chosen:
        console.print(f"no module of pyproject.toml's [tool.gristmill.mutation.tests] matches {args.modules}")
        return 2
    if not args.report_only:
        if not args.no_generate:
            with console.status("writing the mutants (mutmut)"):
                plan.generate()
        for module in chosen:
            if not _run_module(module, args):
                return 1
    table = report.summary(chosen, {module.path: _sample(args, module) for module in chosen})
    print(report.as_text(table))
    if args.report:
        args.report.write_text(report.as_markdown(table, chosen))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="only the modules whose path contains one of these")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once (default 2)")
    parser.add_argument("--fresh", action="store_true", help="test every mutant again, killed ones too")
    parser.add_argument("--limit", type=int, help="at most this many mutants per module (a trial)")
    parser.add_argument("--sample", type=int, help="per module not run in full: this many mutants drawn at random")
    parser.add_argument("--sample-size", action="append", default=[], metavar="WORD=N",
                        help="another sample size for the modules whose path contains WORD (repeatable)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=19, help="the seed of --sample's draw (default 19)")
    parser.add_argument("--report", type=_path, help="write the kill rates and survivors as Markdown here")
    parser.add_argument("--report-only", action="store_true", help="run nothing; report the stored results")
    parser.add_argument(
        "--no-generate",
        action="store_true",
        help="use the mutants as written (a second runner beside one that writes them, on other modules)",
    )
    return parser


def _sample(args: argparse.Namespace, module: plan.Module) -> plan.Sample | None:
    """--sample's size, or --sample-size's for this module (the last WORD=N whose word is in its path)."""
    size = args.sample
    for override in args.sample_size:
        word, _, n = override.partition("=")
        if word in module.path:
            size = int(n)
    return plan.Sample(size, args.seed) if size else None


def _path(text: str):
    from pathlib import Path

    return Path(text).resolve()


def _run_module(module: plan.Module, args: argparse.Namespace) -> bool:
    results = plan.Results(module)
    names = results.to_run(fresh=args.fresh, sample=_sample(args, module))[: args.limit]
    if not names:
        console.print(f"{module.path}: every mutant already killed")
        return True
    checks = {line["name"]: line for line in _worker(module, ["", "fail"], timeout=1800, jobs=2)}
    if checks[""]["code"] != 0:
        console.print(f"{module.path}: its tests fail without a mutant (exit {checks['']['code']}); fix that first")
        return False
    if checks["fail"]["code"] == 0:
        console.print(f"{module.path}: no test reached the mutated code (mutmut's forced failure passed)")
        return False
    timeout = 3 * checks[""]["seconds"] + 60
    columns = (TextColumn(module.path), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(module.path, total=len(names))
        for line in _worker(module, names, timeout=timeout, jobs=args.jobs):
            results.record(line["name"], line["code"], line["seconds"])
            progress.advance(task)
    return True


def _worker(module: plan.Module, names: list[str], *, timeout: float, jobs: int):
    """Run `names` through a fork server inside mutants/; yield its result lines as they come."""
    env = {k: v for k, v in os.environ.items() if k != "MUTANT_UNDER_TEST"}
    env["PYTHONPATH"] = str(plan.MUTANTS)
    command = [sys.executable, "-m", "tests.mutation.worker", str(timeout), str(jobs), *module.tests]
    with subprocess.Popen(command, cwd=plan.MUTANTS, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True) as worker:  # fmt: skip
        assert worker.stdin is not None and worker.stdout is not None
        worker.stdin.write("".join(f"{name}\n" for name in names))
        worker.stdin.close()
        started = time.monotonic()
        for raw in worker.stdout:
            yield json.loads(raw)
        if worker.wait() != 0:
            raise SystemExit(f"the fork server of {module.path} failed after {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    sys.exit(main())

"""Kill rates per module from mutmut's stored results, and the survivors with their diffs."""

from __future__ import annotations

import math
import os
import subprocess
from dataclasses import dataclass
from statistics import NormalDist

from tests.mutation import plan


@dataclass(frozen=True)
class Row:
    """One module's figures; `equivalent` survivors are listed in equivalent.toml with a reason.

    Survivors listed there as "Accepted survivor" (not equivalent: a race no test can place) stay in `survived`.
    """

    path: str
    mutants: int  # the mutants the figures are about: all of the module's, or a random sample of them
    population: int  # all of the module's mutants
    killed: int  # a test failed (timeouts included: the tests did not pass)
    survived: list[str]
    equivalent: list[str]
    not_run: int

    @property
    def kill_rate(self) -> float:
        tested = self.mutants - self.not_run
        return self.killed / tested if tested else 0.0

    @property
    def score(self) -> float:
        """The kill rate with the equivalent mutants (which no test can kill) left out."""
        tested = self.mutants - self.not_run - len(self.equivalent)
        return self.killed / tested if tested else 0.0

    @property
    def sampled(self) -> bool:
        return self.mutants < self.population

    def interval(self, *, without_equivalent: bool) -> tuple[float, float]:
        """The 95 % Wilson interval of the kill rate of a sample; the rate itself when measured in full."""
        tested = self.mutants - self.not_run - (len(self.equivalent) if without_equivalent else 0)
        rate = self.score if without_equivalent else self.kill_rate
        return wilson(self.killed, tested) if self.sampled else (rate, rate)


def wilson(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for a proportion: sound for small samples and rates near 1, unlike p ± z·se."""
    if not trials:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def summary(modules: list[plan.Module], samples: dict[str, plan.Sample | None] | None = None) -> list[Row]:
    """Per module: over all its mutants when every one has run, else over its sample when it has one."""
    known = plan.equivalent()
    rows = []
    for module in modules:
        results = plan.Results(module)
        codes = {name: results.codes[name] for name in results.selection((samples or {}).get(module.path))}
        survivors = sorted(name for name, code in codes.items() if code not in (None, plan.KILLED, plan.TIMEOUT))
        rows.append(Row(
            path=module.path, mutants=len(codes), population=len(results.codes),
            killed=sum(code in (plan.KILLED, plan.TIMEOUT) for code in codes.values()),
            survived=[name for name in survivors if name not in known or _accepted(known[name])],
            equivalent=[name for name in survivors if name in known and not _accepted(known[name])],
            not_run=sum(code is None for code in codes.values()),
        ))  # fmt: skip
    return rows


def _accepted(reason: str) -> bool:
    """A survivor explained but not equivalent (a race no test can place, or still open): it counts as surviving."""
    return reason.startswith(plan.NOT_EQUIVALENT)


def _why(name: str, known: dict[str, str]) -> str:
    if name not in known:
        return " **Not explained yet.**"
    return f" {known[name]}" if _accepted(known[name]) else f" Equivalent: {known[name]}"


def _totals(rows: list[Row]) -> list[Row]:
    """The modules measured in full added up; the samples are not added to them (each stands for its module)."""
    full = [r for r in rows if not r.sampled]
    if not full:
        return []
    label = "all measured in full" if len(full) < len(rows) else "all"
    return [Row(label, sum(r.mutants for r in full), sum(r.mutants for r in full),
                sum(r.killed for r in full), [n for r in full for n in r.survived],
                [n for r in full for n in r.equivalent], sum(r.not_run for r in full))]  # fmt: skip


def _rate(row: Row, *, without_equivalent: bool) -> str:
    rate = row.score if without_equivalent else row.kill_rate
    if not row.sampled:
        return f"{rate:.1%}"
    low, high = row.interval(without_equivalent=without_equivalent)
    return f"{rate:.1%} [{low:.0%}–{high:.0%}]"


def _line(row: Row) -> tuple[str, ...]:
    size = f"{row.mutants} of {row.population} (sample)" if row.sampled else str(row.mutants)
    return (row.path, size, str(row.killed), str(len(row.survived)), str(len(row.equivalent)), str(row.not_run),
            _rate(row, without_equivalent=False), _rate(row, without_equivalent=True))  # fmt: skip


HEADER = ("module", "mutants", "killed", "survived", "equivalent", "not run", "kill rate", "without equivalent")


def as_text(rows: list[Row]) -> str:
    lines = [HEADER, *(_line(r) for r in [*rows, *_totals(rows)])]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines)


def as_markdown(rows: list[Row], modules: list[plan.Module]) -> str:
    """The figures as a table, then each survivor: its name, the line it changes, and why it may stay."""
    out = [f"Measured on commit {_commit()}.", "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    out += ["| " + " | ".join(_line(r)) + " |" for r in [*rows, *_totals(rows)]]
    if any(r.sampled for r in rows):
        out += ["", "A sampled module's rates are those of its sample, with their 95 % Wilson interval in brackets."]
    known = plan.equivalent()
    for row in rows:
        if not row.survived and not row.equivalent:
            continue
        out += ["", f"### `{row.path}`", ""]
        for name in [*row.survived, *row.equivalent]:
            out.append(f"- `{name.rpartition('.')[2]}`: {_change(name, row.path)}.{_why(name, known)}")
    return "\n".join(out) + "\n"


def _change(name: str, path: str) -> str:
    """The mutant's edit in one line: the lines it removes and adds."""
    lines = [line for line in _diff(name, path).splitlines() if line[:1] in "-+" and line[:3] not in ("---", "+++")]
    return " ".join(f"`{line[0]} {line[1:].strip()}`" for line in lines)


def _diff(name: str, path: str) -> str:
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    os.chdir(plan.REPO)
    return get_diff_for_mutant(name, path=path)


def _commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=plan.REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=plan.REPO,
                           capture_output=True, text=True)  # fmt: skip
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")

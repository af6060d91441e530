"""Kill rates per module from mutmut's stored results, and the survivors with their diffs."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from tests.mutation import plan


@dataclass(frozen=True)
class Row:
    """One module's figures; `equivalent` survivors are listed in equivalent.toml with a reason."""

    path: str
    mutants: int
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


def summary(modules: list[plan.Module]) -> list[Row]:
    known = plan.equivalent()
    rows = []
    for module in modules:
        codes = plan.Results(module).codes
        survivors = sorted(name for name, code in codes.items() if code not in (None, plan.KILLED, plan.TIMEOUT))
        rows.append(Row(
            path=module.path, mutants=len(codes),
            killed=sum(code in (plan.KILLED, plan.TIMEOUT) for code in codes.values()),
            survived=[name for name in survivors if name not in known],
            equivalent=[name for name in survivors if name in known],
            not_run=sum(code is None for code in codes.values()),
        ))  # fmt: skip
    return rows


def _total(rows: list[Row]) -> Row:
    return Row("all", sum(r.mutants for r in rows), sum(r.killed for r in rows),
               [n for r in rows for n in r.survived], [n for r in rows for n in r.equivalent],
               sum(r.not_run for r in rows))  # fmt: skip


def _line(row: Row) -> tuple[str, ...]:
    return (row.path, str(row.mutants), str(row.killed), str(len(row.survived)), str(len(row.equivalent)),
            str(row.not_run), f"{row.kill_rate:.1%}", f"{row.score:.1%}")  # fmt: skip


HEADER = ("module", "mutants", "killed", "survived", "equivalent", "not run", "kill rate", "without equivalent")


def as_text(rows: list[Row]) -> str:
    lines = [HEADER, *(_line(r) for r in rows), _line(_total(rows))]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines)


def as_markdown(rows: list[Row], modules: list[plan.Module]) -> str:
    """The figures as a table, then each survivor: its name, the line it changes, and why it may stay."""
    out = [f"Measured on commit {_commit()}.", "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    out += ["| " + " | ".join(_line(r)) + " |" for r in [*rows, _total(rows)]]
    known = plan.equivalent()
    for row in rows:
        if not row.survived and not row.equivalent:
            continue
        out += ["", f"### `{row.path}`", ""]
        for name in [*row.survived, *row.equivalent]:
            why = f" Equivalent: {known[name]}" if name in known else " **Not explained yet.**"
            out.append(f"- `{name.rpartition('.')[2]}`: {_change(name, row.path)}.{why}")
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

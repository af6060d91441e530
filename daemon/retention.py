"""`retention` and `gristmill prune`: forgetting what old runs recorded. User files are never touched."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from daemon.errors import GristmillError
from daemon.store import RunStore
from daemon.store.retention import forget_runs
from daemon.words import count
from daemon.workflow import Workflow

log = logging.getLogger("gristmill")

PRUNE_EVERY_SECONDS = 6 * 3600  # the daemon prunes at start and then this often


@dataclass
class PruneReport:
    """How many runs (and their model calls) were forgotten, per workflow."""

    runs: dict[str, int] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def total_runs(self) -> int:
        return sum(self.runs.values())

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def lines(self) -> list[str]:
        """One line per workflow that had something to prune, then a total."""
        verb = "would prune" if self.dry_run else "pruned"
        out = [
            f"{name}: {verb} {count(n, 'run')}, {count(self.calls[name], 'model call')}"
            for name, n in sorted(self.runs.items())
            if n
        ]
        out.append(f"{verb} {count(self.total_runs, 'run')} and {count(self.total_calls, 'model call')} in all")
        return out


def prune(store: RunStore, workflows: Iterable[Workflow], now: datetime, *, dry_run: bool = False) -> PruneReport:
    """Forget the runs of each workflow with a `retention` that finished longer ago than it."""
    report = PruneReport(dry_run=dry_run)
    for workflow in workflows:
        keep = workflow.retention_delta
        if keep is None:
            continue
        note = f"older than the retention of {workflow.retention}; outputs and model calls deleted"
        runs, calls = forget_runs(store.engine, workflow.name, now - keep, note, dry_run=dry_run)
        report.runs[workflow.name], report.calls[workflow.name] = runs, calls
    return report


def prune_logged(store: RunStore, workflows: Iterable[Workflow], now: datetime) -> PruneReport | None:
    """The daemon's automatic prune: log what was forgotten, and never stop the daemon for it."""
    try:
        report = prune(store, workflows, now)
    except GristmillError as exc:
        log.warning("pruning old runs failed, will try again later: %s", exc)
        return None
    if report.total_runs:
        log.info("retention: %s", report.lines()[-1])
    return report

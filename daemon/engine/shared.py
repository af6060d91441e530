"""Files that several workflows take: when a run of one moves a file away, the others say who took it.

Two workflows watching one folder each queue a run per file; the first to move the file wins it.
The other workflow must still end with an outcome for that file (nothing is lost), and the outcome
should say where the file went: a skipped run naming the run, the workflow and the destination.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from daemon.domain import NewRun, Origin, Run, RunStatus
from daemon.store import RunStore
from daemon.workflow import Workflow


def moved_reason(path: Path | str, mover: Run, destination: Path | str) -> str:
    """The skip reason of a run whose file another workflow's run moved away."""
    return f"{Path(path).name} was moved by run {mover.id} of workflow '{mover.workflow}' to {destination}"


class SharedFiles:
    """Records, in every other workflow that takes a file, the run that moved it away."""

    def __init__(self, store: RunStore, workflows: Callable[[], Mapping[str, Workflow]], *, max_attempts: int):
        self.store, self.workflows, self.max_attempts = store, workflows, max_attempts

    def moved(self, run: Run, destination: Path) -> None:
        """`run` moved its file away: each other workflow that takes the file at `run.input_path` gets a record.

        One with no run for this content gets a skipped one; one whose run is still queued has it
        skipped; a running one finds the file gone and asks `why_gone`. Safe to call again.
        """
        if run.input_path is None or run.sha256 is None:
            return
        source = Path(run.input_path)
        for other in list(self.workflows().values()):
            if other.name != run.workflow and other.trigger.kind.wants(other, source):
                self._record(other, source, run, destination)

    def why_gone(self, run: Run, path: Path) -> str | None:
        """Why `run`'s file is no longer at `path`, when a run of another workflow moved it; else None."""
        if run.sha256 is None:
            return None
        for other in self.store.with_content(run.sha256):
            if other.workflow != run.workflow and other.input_path == str(path):
                destination = _moved_to(other.outputs)
                if destination is not None:
                    return moved_reason(path, other, destination)
        return None

    def _record(self, workflow: Workflow, source: Path, mover: Run, destination: Path) -> None:
        reason = moved_reason(source, mover, destination)
        known = self.store.known(workflow.name, mover.sha256 or "")
        if known is None:
            context = {"moved_by": {"run": mover.id, "workflow": mover.workflow, "destination": str(destination)}}
            new = NewRun(
                workflow=workflow.name,
                trigger=Origin.FILE,
                input_path=str(source),
                sha256=mover.sha256,
                dedupe_key=mover.sha256,
                context=context,
                max_attempts=self.max_attempts,
            )
            self.store.enqueue_skipped(new, reason)
        elif known.status is RunStatus.QUEUED and known.input_path == str(source):
            self.store.skip(known.id, reason)  # False when a worker claimed it meanwhile: it asks why_gone


def _moved_to(outputs: Mapping[str, Any]) -> str | None:
    """Where a run's route (or its recorded intent) moved the file, if it did."""
    from daemon.plugins import registry

    actions = registry().actions
    for output in outputs.values():
        if not isinstance(output, dict) or not output.get("destination"):
            continue
        kind = actions.get(output.get("action") or output.get("intent") or "")
        if kind is not None and kind.moves_file:
            return str(output["destination"])
    return None

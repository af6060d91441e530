"""Checks of command-line arguments against the workflows and the history: one sentence, exit 2."""

from __future__ import annotations

import difflib
from collections.abc import Collection
from pathlib import Path

from daemon.errors import UsageError
from daemon.store import RunStore
from daemon.workflow import Workflow


def known_workflow(name: str, loaded: Collection[str], store: RunStore) -> None:
    """Refuse a workflow name that is neither loaded nor in the run history (a typo, most likely)."""
    if name in loaded or any(store.counts(workflow=name).values()):
        return
    close = difflib.get_close_matches(name, sorted(loaded), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise UsageError(f"no workflow named '{name}' is loaded or has runs; {hint}list them with: gristmill workflows")


def trigger_input(workflow: Workflow, file: Path | None) -> None:
    """Refuse a FILE given to a workflow that reads its own input (a schedule), and a missing one for a watch."""
    name = workflow.name
    if not workflow.takes_file and file is not None:
        raise UsageError(
            f"workflow '{name}' is started by its {workflow.trigger.kind.name} trigger and takes no FILE "
            f"(it reads its own input); run it with: gristmill trigger {name}"
        )
    if workflow.takes_file and file is None:
        raise UsageError(f"workflow '{name}' works on files; give one: gristmill trigger {name} FILE")

"""`on_failure: {move_to: …}`: where a watched file goes when its run failed for good."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from daemon.domain import Run
from daemon.errors import GristmillError
from daemon.files import ops
from daemon.files.paths import confine
from daemon.workflow import Workflow
from daemon.workflow.templates import file_scope, render

log = logging.getLogger("gristmill")


def move_failed(workflow: Workflow, run: Run, error: str | None) -> Path | None:
    """Move the failed run's file to the workflow's `on_failure.move_to`; where it went, or None.

    None when there is no such setting, no input file, or the file is no longer where the run
    found it (a step already moved it, or the user did). Never overwrites: a collision is suffixed.
    """
    if workflow.on_failure is None or run.input_path is None:
        return None
    source = Path(run.input_path)
    if not os.path.lexists(source):
        return None
    template = workflow.on_failure.move_to
    scope = {
        "file": file_scope(source, subfolder=run.context.get("subfolder", ""), sha256=run.sha256),
        "run": {"id": run.id, "workflow": run.workflow, "error": error or ""},
        "now": datetime.now(UTC),
    }
    return ops.move_file(source, confine(render(template, scope), template))


def after_failure(
    workflow: Workflow | None, run: Run, error: str | None, moved: Callable[[Run, Path], None] = lambda r, p: None
) -> None:
    """A run failed for good: move its file per `on_failure`, say where it went (or why not), tell `moved`."""
    if workflow is None or workflow.on_failure is None:
        return
    try:
        destination = move_failed(workflow, run, error)
    except (GristmillError, OSError) as exc:
        log.warning("run %d failed and its file stays where it is: on_failure could not move it: %s", run.id, exc)
        return
    if destination is not None:
        log.info("run %d failed; its file was moved to %s (on_failure)", run.id, destination)
        moved(run, destination)

"""`on_failure: {move_to: …}`: where a watched file goes when its run failed for good."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path

from daemon.domain import Run
from daemon.errors import GristmillError
from daemon.files import ops
from daemon.files.paths import confine
from daemon.workflow import Workflow
from daemon.workflow.templates import file_scope, render

log = logging.getLogger("gristmill")


def move_failed(workflow: Workflow, run: Run, error: str | None, source: Path) -> Path | None:
    """Move the failed run's file, now at `source`, to the workflow's `on_failure.move_to`; where it went.

    None when there is no such setting or the file is gone. Never overwrites: a collision is suffixed.
    """
    if workflow.on_failure is None or not os.path.lexists(source):
        return None
    template = workflow.on_failure.move_to
    scope = {
        "file": file_scope(source, subfolder=run.context.get("subfolder", ""), sha256=run.sha256),
        "run": {"id": run.id, "workflow": run.workflow, "error": error or ""},
        "now": datetime.now(UTC),
    }
    return ops.move_file(source, confine(render(template, scope), template))


def after_failure(workflow: Workflow | None, run: Run, error: str | None, source: Path | None) -> Path | None:
    """A run failed for good: move its file (now at `source`) per `on_failure`; where it went, or None."""
    if workflow is None or workflow.on_failure is None or source is None or run.dry_run:
        return None
    try:
        return move_failed(workflow, run, error, source)
    except (GristmillError, OSError) as exc:
        log.warning("run %d failed and its file stays at %s: on_failure could not move it: %s", run.id, source, exc)
        return None

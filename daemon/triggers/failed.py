"""`on_failure: {move_to: …}`: where a watched file goes when its run failed for good."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from daemon.domain import Run
from daemon.files import ops
from daemon.files.paths import confine
from daemon.workflow import Workflow
from daemon.workflow.templates import render


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
        "file": {
            "path": str(source), "name": source.name, "stem": source.stem, "suffix": source.suffix,
            "subfolder": run.context.get("subfolder", ""), "sha256": run.sha256,
        },
        "run": {"id": run.id, "workflow": run.workflow, "error": error or ""},
        "now": datetime.now(UTC),
    }  # fmt: skip
    folder = confine(render(template, scope), template)
    return ops.move_file(source, folder)

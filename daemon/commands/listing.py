"""`gristmill workflows`: each workflow, its trigger and next fire time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from daemon.errors import WorkflowError
from daemon.settings import Settings
from daemon.workflow import Workflow, load_workflows


def describe_trigger(workflow: Workflow) -> str:
    """The trigger in a few words."""
    return workflow.trigger.kind.describe(workflow.trigger.spec)


def next_fire(workflow: Workflow, now: datetime) -> str | None:
    """When the workflow fires next on its own, in its own time zone; None when events decide."""
    tick = workflow.trigger.kind.next_fire(workflow.trigger.spec, now)
    return None if tick is None else tick.strftime("%Y-%m-%d %H:%M:%S %Z")


def workflow_rows(settings: Settings) -> tuple[list[dict[str, Any]], list[WorkflowError]]:
    """One row per loaded workflow, and the errors of those that did not load."""
    workflows, errors = load_workflows(settings.workflows, servers=settings.model_servers)
    now = datetime.now(UTC)
    rows = [
        {
            "name": w.name,
            "description": w.description,
            "trigger": describe_trigger(w),
            "model": w.model or settings.model,
            "next": next_fire(w, now),
            "file": str(w.source) if w.source else None,
        }
        for w in sorted(workflows.values(), key=lambda w: w.name)
    ]
    return rows, errors

"""`gristmill workflows`: each workflow, its trigger and next fire time."""

from __future__ import annotations

from typing import Any

from daemon.errors import WorkflowError
from daemon.settings import Settings
from daemon.workflow import Workflow, load_workflows


def describe_trigger(workflow: Workflow) -> str:
    """The trigger in a few words."""
    watch, schedule = workflow.trigger.watch, workflow.trigger.schedule
    if watch is not None:
        patterns = ",".join(watch.patterns) or "*"
        return f"watch {watch.path} ({patterns}{', recursive' if watch.recursive else ''})"
    assert schedule is not None
    when = f"cron {schedule.cron}" if schedule.cron else f"every {schedule.every}"
    return f"{when} ({schedule.timezone or 'local time'})"


def workflow_rows(settings: Settings) -> tuple[list[dict[str, Any]], list[WorkflowError]]:
    """One row per loaded workflow, and the errors of those that did not load."""
    workflows, errors = load_workflows(settings.workflows)
    rows = [
        {
            "name": w.name,
            "description": w.description,
            "trigger": describe_trigger(w),
            "model": w.model or settings.model,
            "next": None,
            "file": str(w.source) if w.source else None,
        }
        for w in sorted(workflows.values(), key=lambda w: w.name)
    ]
    return rows, errors

"""`gristmill workflows`: each workflow, its trigger and next fire time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from daemon.errors import WorkflowError
from daemon.schedule.firing import schedule_ticks
from daemon.schedule.ticks import zone_of
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


def next_fire(workflow: Workflow, now: datetime) -> str | None:
    """When a scheduled workflow fires next, in its own time zone; None for a watch."""
    schedule = workflow.trigger.schedule
    if schedule is None:
        return None
    tick = schedule_ticks(workflow).next_after(now).astimezone(zone_of(schedule.timezone))
    return tick.strftime("%Y-%m-%d %H:%M:%S %Z")


def workflow_rows(settings: Settings) -> tuple[list[dict[str, Any]], list[WorkflowError]]:
    """One row per loaded workflow, and the errors of those that did not load."""
    workflows, errors = load_workflows(settings.workflows)
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

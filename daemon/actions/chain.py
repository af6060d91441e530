"""The `run` route action: queue another workflow on the same file."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator

from daemon.actions.base import Done, RouteAction
from daemon.actions.files import input_file
from daemon.steps import StepContext
from daemon.workflow.fields import NAME_PATTERN, problem


def _workflow_name(value: str) -> str:
    if not NAME_PATTERN.match(value):
        raise problem("run", "'{name}' is not a workflow name ([a-z0-9-]+)", name=value)
    return value


class RunWorkflow(RouteAction):
    """Queue the named workflow on this run's file (deduplicated like any file it sees)."""

    name = "run"
    value = Annotated[str, AfterValidator(_workflow_name)]
    names_workflow = True

    def perform(self, target: Any, ctx: StepContext) -> Done:
        source = input_file(ctx, self.name)
        if not ctx.act.dry_run:
            ctx.act.chain(target, source)
        return Done(target)

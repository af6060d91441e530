"""Route actions on the run's file: `move_to` and `copy_to` a folder, or `keep` it where it is."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator

from daemon.actions.base import Done, RouteAction
from daemon.errors import GristmillError
from daemon.steps import StepContext
from daemon.workflow.fields import TemplateStr, problem


def input_file(ctx: StepContext, action: str) -> Path:
    """The run's file, for an action that needs one."""
    if ctx.file_path is None:
        raise GristmillError(f"'{action}' needs an input file, but this run has none")
    return ctx.file_path


def _known_sha256(ctx: StepContext, source: Path) -> str | None:
    """The file's sha256 when the run read it at this path (saves reading it again)."""
    file = ctx.scope.get("file") or {}
    return file.get("sha256") if file.get("path") == str(source) else None


class MoveTo(RouteAction):
    """Move the file into a folder (the template is rendered and confined to its folder)."""

    name = "move_to"
    value = TemplateStr
    into_folder = True
    moves_file = True

    def perform(self, target: Any, ctx: StepContext) -> Done:
        source = input_file(ctx, self.name)
        dest = ctx.act.effects.place("move_to", source, Path(target), _known_sha256(ctx, source))
        return Done(str(dest), moved_to=None if ctx.act.dry_run else dest)


class CopyTo(RouteAction):
    """Copy the file into a folder; the original stays."""

    name = "copy_to"
    value = TemplateStr
    into_folder = True

    def perform(self, target: Any, ctx: StepContext) -> Done:
        source = input_file(ctx, self.name)
        return Done(str(ctx.act.effects.place("copy_to", source, Path(target), _known_sha256(ctx, source))))


def _true(value: bool) -> bool:
    if value is not True:
        raise problem("action", "keep: false does nothing; write keep: true or another action")
    return value


class Keep(RouteAction):
    """Leave the file where it is (the default of every route)."""

    name = "keep"
    value = Annotated[bool, AfterValidator(_true)]
    needs_file = False

    def perform(self, target: Any, ctx: StepContext) -> Done:
        return Done(None if ctx.file_path is None else str(ctx.file_path))

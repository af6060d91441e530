"""The side effects a run may have: moving, copying, writing, chaining, posting."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon.errors import GristmillError
from daemon.files import ops
from daemon.netguard import check_url
from daemon.workflow import Workflow

if TYPE_CHECKING:
    from daemon.engine.steps import StepContext


@dataclass
class Actions:
    """Carries out route and write steps; in a dry run, only says where things would go."""

    dry_run: bool
    # Queues another workflow on a file; returns the new run's id (None when deduplicated).
    chain: Callable[[str, Path], int | None]
    # Posts a JSON body to a declared URL (checked by the privacy guard).
    post: Callable[[str, dict[str, Any]], None]

    def perform(self, kind: str, target: str | None, ctx: StepContext) -> str | None:
        """Do the route action `kind` on the run's file; return its destination."""
        if kind == "keep":
            return None if ctx.file_path is None else str(ctx.file_path)
        if kind == "webhook":
            body = {"workflow": ctx.workflow.name, "run": ctx.scope.get("run"), "outputs": _outputs(ctx)}
            check_webhook(target or "", ctx.workflow)
            if not self.dry_run:
                self.post(target or "", body)
            return target
        source = _need_file(ctx, kind)
        if kind == "run":
            if not self.dry_run:
                self.chain(target or "", source)
            return target
        folder = Path(target or "")
        if self.dry_run:
            return str(next(p for p in ops.candidates(folder, source.name) if not p.exists()))
        if kind == "move_to":
            ctx.file_path = ops.move_file(source, folder)
            return str(ctx.file_path)
        return str(ops.copy_file(source, folder))

    def write(self, path: Path, content: str) -> str:
        """Write a new file at `path` (suffixed on collision); return where it went."""
        if self.dry_run:
            return str(path)
        return str(ops.write_new(path, content.encode("utf-8")))


def check_webhook(url: str, workflow: Workflow) -> None:
    """Refuse, before any connection, a webhook beyond this machine and the private network."""
    where = f" in {workflow.source}" if workflow.source else ""
    check_url(
        url, allowed=workflow.allow_remote_webhooks, what=f"the webhook of workflow '{workflow.name}'",
        how_to_allow=f"allow_remote_webhooks: true{where}",
    )


def _need_file(ctx: StepContext, kind: str) -> Path:
    if ctx.file_path is None:
        raise GristmillError(f"'{kind}' needs an input file, but this run has none")
    return ctx.file_path


def _outputs(ctx: StepContext) -> dict[str, Any]:
    names = set(ctx.workflow.step_ids)
    return {k: v for k, v in ctx.scope.items() if k in names and _jsonable(v)}


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True

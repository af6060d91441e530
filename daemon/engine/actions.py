"""The side effects a run may have: moving, copying, writing, chaining, posting."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from daemon import failpoints
from daemon.errors import GristmillError, UnsafePathError
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
    # Records the current step's intent (where a file will go) before the file is touched; raises
    # LeaseLost when the run is no longer this worker's, so nothing is touched then.
    record: Callable[[dict[str, Any]], None] = lambda intent: None
    # Intents of an earlier attempt found complete on disk, by step id (see `recover`).
    done: dict[str, dict[str, Any]] = field(default_factory=dict)
    step_id: str = ""  # the step being run, set by the runner

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
        dest = self._finished(kind, str(folder), "folder") or self._place(kind, source, folder, ctx)
        if kind == "move_to":
            ctx.file_path = dest
        return str(dest)

    def write(self, path: Path, content: str) -> str:
        """Write a new file at `path` (suffixed on collision); return where it went."""
        if self.dry_run:
            return str(path)
        done = self._finished("write", str(path), "requested")
        if done is not None:
            return str(done)
        data = content.encode("utf-8")
        intent = {"intent": "write", "requested": str(path), "sha256": hashlib.sha256(data).hexdigest()}
        dest = self._claim(path.parent, path.name, intent, lambda dest: ops.write_exact(dest, data))
        failpoints.hit("after_write_before_commit")
        return str(dest)

    def _finished(self, kind: str, wanted: str, key: str) -> Path | None:
        """The destination an earlier attempt of this step reached, when it aimed where we aim now."""
        intent = self.done.get(self.step_id)
        if intent is None or intent.get("intent") != kind or intent.get(key) != wanted:
            return None
        return Path(intent["destination"])

    def _place(self, kind: str, source: Path, folder: Path, ctx: StepContext) -> Path:
        file = ctx.scope.get("file") or {}
        sha = file.get("sha256") if file.get("path") == str(source) else None
        intent = {"intent": kind, "source": str(source), "folder": str(folder), "sha256": sha or _sha256(source)}
        if kind == "copy_to":
            return self._claim(folder, source.name, intent, lambda dest: ops.copy_exact(source, dest))
        dest = self._claim(folder, source.name, intent, lambda dest: ops.place_exact(source, dest))
        failpoints.hit("after_link_before_unlink")
        ops.remove_moved(source)
        failpoints.hit("after_move_before_commit")
        return dest

    def _claim(self, folder: Path, name: str, intent: dict[str, Any], put: Callable[[Path], None]) -> Path:
        """Record the first free name as the destination, then put the file there under exactly it."""
        for dest in ops.candidates(folder, name):
            if os.path.lexists(dest):
                continue
            self.record({**intent, "destination": str(dest)})
            failpoints.hit("after_intent")
            try:
                put(dest)
            except FileExistsError:
                continue  # another run took the name between our look and our link
            return dest
        raise UnsafePathError(f"no free name for {name} in {folder}", name, folder)


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


def recover(outputs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Split an earlier attempt's outputs into finished step outputs and intents complete on disk.

    An intent whose destination holds the recorded content is complete (a move whose source is
    still there is finished by removing the source); any other intent is dropped, so its step runs
    again. Nothing is copied a second time.
    """
    outputs_done: dict[str, Any] = {}
    complete: dict[str, dict[str, Any]] = {}
    for step_id, out in outputs.items():
        if not (isinstance(out, dict) and "intent" in out):
            outputs_done[step_id] = out
            continue
        # A crash mid-copy or mid-write may have left a hidden temporary file there.
        ops.sweep_temporaries(Path(out.get("destination", "")).parent)
        if _complete(out):
            complete[step_id] = out
    return outputs_done, complete


def _complete(intent: dict[str, Any]) -> bool:
    sha = intent.get("sha256")
    if not sha or not _holds(Path(intent.get("destination", "")), sha):
        return False
    if intent["intent"] == "move_to":
        source = Path(intent["source"])
        if _holds(source, sha):  # linked but not yet unlinked: finish the move
            ops.remove_moved(source)
    return True


def _holds(path: Path, sha: str) -> bool:
    """Whether `path` is a regular file (not a link) whose content has this sha256."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        return _sha256(path) == sha
    except OSError:
        return False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()

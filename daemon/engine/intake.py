"""Where a file becomes a queued run: hashing, deduplication key, context for templates."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from daemon.domain import NewRun, Run, Origin
from daemon.errors import InputError
from daemon.files.hashing import sha256_file
from daemon.store import RunStore
from daemon.workflow import Workflow


class Intake:
    """Queues runs for files and wakes the workers."""

    def __init__(self, store: RunStore, *, max_attempts: int, wake: Callable[[], None] = lambda: None):
        self.store = store
        self.max_attempts = max_attempts
        self.wake = wake

    def file(
        self, workflow: Workflow, path: Path, *, trigger: Origin = Origin.FILE
    ) -> tuple[Run, bool]:
        """Queue `workflow` on the file at `path`; the same content in the same workflow runs once.

        A manual trigger is never deduplicated: the user asked for it.
        """
        path = Path(os.path.abspath(path))
        try:
            info = os.lstat(path)
            if not stat.S_ISREG(info.st_mode):
                raise InputError(f"{path} is not a regular file (symbolic links are not followed)")
            digest = sha256_file(path)
        except FileNotFoundError as exc:
            raise InputError(f"{path} does not exist") from exc
        except PermissionError as exc:
            raise InputError(f"{path} cannot be read ({exc.strerror})") from exc
        context = {
            "size": info.st_size,
            "mtime": datetime.fromtimestamp(info.st_mtime, UTC).isoformat(),
            "subfolder": _subfolder(workflow, path),
        }
        new = NewRun(
            workflow=workflow.name,
            trigger=trigger,
            input_path=str(path),
            sha256=digest,
            dedupe_key=None if trigger is Origin.MANUAL else digest,
            context=context,
            max_attempts=self.max_attempts,
        )
        run, created = self.store.enqueue(new, gone=lambda old: not os.path.lexists(old))
        if created:
            self.wake()
        return run, created

    def refuse(self, workflow: Workflow, path: Path, reason: str) -> Run:
        """Record a file the watcher will not process (a symbolic link) as skipped, once per path."""
        new = NewRun(
            workflow=workflow.name,
            trigger=Origin.FILE,
            input_path=str(path),
            dedupe_key=f"refused:{path}",
            max_attempts=self.max_attempts,
        )
        run, created = self.store.enqueue(new)
        if created:
            # A worker that claims it first skips it too: the runner refuses links as well.
            self.store.skip(run.id, reason)
        return run

    def tick(self, workflow: Workflow, tick: str | None, context: dict | None = None) -> tuple[Run, bool]:
        """Queue one run of a scheduled (or manually triggered) workflow with no input file."""
        new = NewRun(
            workflow=workflow.name,
            trigger=Origin.SCHEDULE if tick else Origin.MANUAL,
            dedupe_key=tick,
            context=context or {},
            max_attempts=self.max_attempts,
        )
        run, created = self.store.enqueue(new)
        if created:
            self.wake()
        return run, created


def _subfolder(workflow: Workflow, path: Path) -> str:
    watch = workflow.trigger.spec_of("watch")
    if watch is None:
        return ""
    try:
        relative = path.parent.relative_to(Path(os.path.abspath(watch.path)))
    except ValueError:
        return ""
    return "" if str(relative) == "." else str(relative)

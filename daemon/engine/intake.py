"""Where a file becomes a queued run: hashing, deduplication key, context for templates."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon.domain import NewRun, Origin, Run, RunStatus
from daemon.engine.resource_outage import StoreOutage
from daemon.errors import InputError, StoreError
from daemon.files.hashing import sha256_file
from daemon.inbound.spool import Spooled
from daemon.store import RunStore
from daemon.store.queueing import VERSION
from daemon.workflow import Workflow

log = logging.getLogger("gristmill")


def _gone(path: str) -> bool:
    """Whether nothing is at `path` any more: a file's unstarted run then follows it to its new name."""
    return not os.path.lexists(path)


class Intake:
    """Queues runs for files and wakes the workers."""

    def __init__(
        self,
        store: RunStore,
        *,
        max_attempts: int,
        wake: Callable[[], None] = lambda: None,
        store_outage: StoreOutage | None = None,
    ):
        self.store = store
        self.max_attempts = max_attempts
        self.wake = wake
        # Shared with the workers: a database that fails is said once, whoever met it first.
        self.store_outage = store_outage or StoreOutage()

    def file(
        self, workflow: Workflow, path: Path, *, trigger: Origin = Origin.FILE, dry_run: bool = False
    ) -> tuple[Run, bool]:
        """Queue `workflow` on the file at `path`; the same content in the same workflow runs once.

        A manual trigger is never deduplicated: the user asked for it. A file that duplicates an
        earlier run is recorded as a skipped run and logged, once per drop.
        """
        path = Path(os.path.abspath(path))
        new = self._file_run(workflow, path, trigger, dry_run)
        found = self._enqueue([new], gone=_gone)[0]
        self._queued(workflow, path, *found)
        return found

    def files(self, pairs: Sequence[tuple[Workflow, Path]]) -> list[tuple[Run, bool] | Exception]:
        """`file` for each (workflow, path) of a settle pass, queued in one write transaction.

        Per pair, what `file` returns or the error it would raise for that file alone (InputError for
        one gone or unreadable); a StoreError is the whole batch's, and raised: none of it was queued.
        """
        outcomes: dict[int, tuple[Run, bool] | Exception] = {}
        ready: list[tuple[int, Workflow, Path, NewRun]] = []
        for place, (workflow, given) in enumerate(pairs):
            path = Path(os.path.abspath(given))
            try:
                ready.append((place, workflow, path, self._file_run(workflow, path, Origin.FILE, False)))
            except Exception as exc:  # one bad file (vanished, unreadable, a bug) must not keep the others out
                outcomes[place] = exc
        found = self._enqueue([new for *_, new in ready], gone=_gone)
        for (place, workflow, path, _), (run, created) in zip(ready, found, strict=True):
            outcomes[place] = run, created
            self._queued(workflow, path, run, created)
        return [outcomes[place] for place in range(len(pairs))]

    def _file_run(self, workflow: Workflow, path: Path, trigger: Origin, dry_run: bool) -> NewRun:
        """The run to queue for the file at absolute `path` as it is now; InputError when it cannot be one."""
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
            VERSION: f"{info.st_ino}:{info.st_mtime_ns}",
        }
        return NewRun(
            workflow=workflow.name,
            trigger=trigger,
            input_path=str(path),
            sha256=digest,
            dedupe_key=None if trigger is Origin.MANUAL else digest,
            context=context,
            max_attempts=self.max_attempts,
            dry_run=dry_run,
        )

    def _queued(self, workflow: Workflow, path: Path, run: Run, created: bool) -> None:
        """Say a duplicate once per drop; wake a worker for a run it can take."""
        if created and run.status is RunStatus.SKIPPED:
            log.info("run %d %s %s skipped: %s", run.id, workflow.name, path, run.error)
        elif created:
            self.wake()

    def _enqueue(self, news: Sequence[NewRun], **kwargs: Any) -> list[tuple[Run, bool]]:
        """`store.enqueue_many`, with a failing store noted as an outage (the caller offers the files again later)."""
        try:
            found = self.store.enqueue_many(news, **kwargs)
        except StoreError as exc:
            if not exc.fatal:
                self.store_outage.failed(exc)
            raise
        if any(created for _, created in found):  # a row was written (finding one that exists proves only reading)
            self.store_outage.ok()
        return found

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

    def spooled(
        self, workflow: Workflow, spooled: Spooled, *, trigger: Origin, dedupe_key: str, context: dict[str, Any]
    ) -> tuple[Run, bool]:
        """Queue `workflow` on a body stored durably in the inbound spool (a hook's, a mail's), once per key.

        The run is on the disk when this returns, a power loss included: the caller acknowledges it
        next (a hook's 202, a mail's cursor), and no scan would find the spooled body again.
        """
        new = NewRun(
            workflow=workflow.name, trigger=trigger, input_path=str(spooled.path), sha256=spooled.sha256,
            dedupe_key=dedupe_key, context=context, max_attempts=self.max_attempts,
        )  # fmt: skip
        run, created = self._enqueue([new], durable=True)[0]
        if created:
            self.wake()
        return run, created

    def skipped(
        self, workflow: Workflow, *, trigger: Origin, dedupe_key: str, reason: str, context: dict[str, Any]
    ) -> tuple[Run, bool]:
        """Record an input that will not be run (a mail over the size limit) as skipped, once per key."""
        new = NewRun(workflow=workflow.name, trigger=trigger, dedupe_key=dedupe_key, context=context,
                     max_attempts=self.max_attempts)  # fmt: skip
        return self.store.enqueue_skipped(new, reason)

    def tick(
        self, workflow: Workflow, tick: str | None, context: dict | None = None, *, dry_run: bool = False
    ) -> tuple[Run, bool]:
        """Queue one run of a scheduled (or manually triggered) workflow with no input file."""
        new = NewRun(
            workflow=workflow.name,
            trigger=Origin.SCHEDULE if tick else Origin.MANUAL,
            dedupe_key=tick,
            context=context or {},
            max_attempts=self.max_attempts,
            dry_run=dry_run,
        )
        run, created = self.store.enqueue(new)
        if created:
            self.wake()
        return run, created


def _subfolder(workflow: Workflow, path: Path) -> str:
    """The folder of `path` below the watched one: "" for the watched folder itself or one outside it."""
    watch = workflow.trigger.spec_of("watch")
    if watch is None:
        return ""
    # Strings, not pathlib (a tenth of a run's Python calls were pathlib's); both paths are absolute and normal.
    root, folder = os.path.abspath(watch.path), os.path.dirname(path)
    below = root if root.endswith(os.sep) else root + os.sep  # "/" ends with one already
    return folder[len(below) :] if folder.startswith(below) else ""

"""Queueing a run: what a new file, a file seen again, and the same content under another name become.

RunStore.enqueue (store/runs.py) calls `enqueue_in` inside its write transaction; the rules of
deduplication live here, in one place: a key already recorded is the run already known, unless the
file at the same path is a new version of it (dropped again), or the known run never started and
its file is gone (renamed: the run follows it); anything else is a skipped duplicate.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, update

from daemon.domain import NewRun, Origin, Run, RunStatus
from daemon.store.queries import to_run
from daemon.store.searchtext import name_words
from daemon.store.statements import FRESH, RUN_COLUMNS
from daemon.store.tables import runs

VERSION = "version"  # context key: which version of the file (inode:mtime_ns) a file run was queued for

InsertOnce = Callable[[Connection, dict[str, Any]], tuple[Run, bool]]


def new_values(new: NewRun, now: datetime) -> dict[str, Any]:
    """The row of a newly queued run; a dry run is never deduplicated (it must not make a file a duplicate)."""
    return {
        "workflow": new.workflow, "status": RunStatus.QUEUED.value, "trigger": Origin(new.trigger).value,
        "input_path": new.input_path, "sha256": new.sha256, "dedupe_key": None if new.dry_run else new.dedupe_key,
        "context": dict(new.context), "outputs": {}, "attempts": 0,
        "max_attempts": new.max_attempts, "created_at": now, "dry_run": new.dry_run,
        "search_name": name_words(new.input_path),
    }  # fmt: skip


def enqueue_in(
    conn: Connection, new: NewRun, now: datetime, gone: Callable[[str], bool], insert_once: InsertOnce
) -> tuple[Run, bool]:
    """Queue `new` in the caller's transaction; (run, created). `insert_once` inserts unless the key is taken."""
    values = new_values(new, now)
    run, created = insert_once(conn, values)
    if created:
        return run, created
    if run.input_path == new.input_path:
        if not _dropped_again(run, new):
            return run, False
        why = "the same file dropped again"
    elif _unstarted(run) and run.input_path and gone(run.input_path):
        return _follow(conn, run, new), True
    else:
        why = "same content"
    # One record per drop: the version in the key makes a rescan or restart find this one again.
    version = new.context.get(VERSION)
    duplicate = values | {
        "status": RunStatus.SKIPPED.value, "error": f"duplicate of run {run.id} ({why})", "finished_at": now,
        "dedupe_key": "|".join(str(part) for part in (new.dedupe_key, new.input_path, version) if part),
    }  # fmt: skip
    return insert_once(conn, duplicate)


def _dropped_again(run: Run, new: NewRun) -> bool:
    """Whether `new` is the same file at the same path as finished `run`, but put there anew.

    A file version (inode and mtime, recorded by intake as `version`) that differs from the one the
    run took is a new drop; the same version is the same drop seen again (a rescan, a restart).
    """
    seen, now = run.context.get(VERSION), new.context.get(VERSION)
    return run.status.finished and seen is not None and now is not None and seen != now


def _unstarted(run: Run) -> bool:
    """Queued or skipped before any step ran: the run never did anything with its file."""
    return run.status in (RunStatus.QUEUED, RunStatus.SKIPPED) and not run.outputs


def _follow(conn: Connection, run: Run, new: NewRun) -> Run:
    """Point an unstarted run at its file's new name; a run skipped for the lost file is queued again."""
    moved = {"input_path": new.input_path, "context": new.context, "search_name": name_words(new.input_path)}
    if run.status is RunStatus.SKIPPED:
        moved |= FRESH
    row = conn.execute(update(runs).where(runs.c.id == run.id).values(moved).returning(*RUN_COLUMNS)).one()
    return to_run(row)

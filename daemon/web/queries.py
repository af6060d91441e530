"""The dashboard's reads that the run store does not have: pages of runs, counts over time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, case, func, literal_column, select

from daemon.domain import Run, RunStatus
from daemon.store.db import reading
from daemon.store.queries import to_run
from daemon.store.search import RunFilter
from daemon.store.statements import RUN_COLUMNS
from daemon.store.tables import runs

FINISHED = [status.value for status in RunStatus if status.finished]


@dataclass(frozen=True)
class RunPage:
    """One page of runs, newest first, and the cursor of the next (older) page."""

    runs: list[Run]
    next_before: int | None


def page_of_runs(engine: Engine, where: RunFilter, *, before: int | None, size: int) -> RunPage:
    """Runs matching `where`, newest first, with ids below `before` (keyset pagination: no OFFSET scans)."""
    stmt = select(*RUN_COLUMNS).where(*_conditions(where)).order_by(runs.c.id.desc()).limit(size + 1)
    if before is not None:
        stmt = stmt.where(runs.c.id < before)
    with reading(engine) as conn:
        found = [to_run(row) for row in conn.execute(stmt)]
    more = len(found) > size
    return RunPage(found[:size], found[size - 1].id if more else None)


def _conditions(where: RunFilter) -> list[Any]:
    conditions = []
    if where.workflow is not None:
        conditions.append(runs.c.workflow == where.workflow)
    if where.status is not None:
        conditions.append(runs.c.status == where.status.value)
    if where.since is not None:
        conditions.append(runs.c.created_at >= where.since)
    if where.until is not None:
        conditions.append(runs.c.created_at < where.until)
    return conditions


def queued_by_workflow(engine: Engine) -> dict[str, int]:
    """How many runs are queued, per workflow that has any."""
    stmt = (
        select(runs.c.workflow, func.count()).where(runs.c.status == RunStatus.QUEUED.value).group_by(runs.c.workflow)
    )
    with reading(engine) as conn:
        return {workflow: count for workflow, count in conn.execute(stmt)}


def counts_in_windows(engine: Engine, windows: dict[str, datetime]) -> dict[str, dict[str, dict[RunStatus, int]]]:
    """Runs created in each window (label → since), per workflow and status, in one pass over the widest."""
    labels = list(windows)
    recent = [func.sum(case((runs.c.created_at >= windows[label], 1), else_=0)) for label in labels]
    since = runs.c.created_at >= min(windows.values())
    if engine.dialect.name == "sqlite":
        # Without table statistics SQLite prefers walking the workflow index for the GROUP BY; the
        # window is a small part of a long history, so say so, and it takes the created_at index.
        since = func.likelihood(since, literal_column("0.05"))
    stmt = select(runs.c.workflow, runs.c.status, *recent).where(since).group_by(runs.c.workflow, runs.c.status)
    counts: dict[str, dict[str, dict[RunStatus, int]]] = {label: {} for label in labels}
    with reading(engine) as conn:
        for workflow, status, *numbers in conn.execute(stmt):
            for label, number in zip(labels, numbers, strict=True):
                counts[label].setdefault(workflow, dict.fromkeys(RunStatus, 0))[RunStatus(status)] = int(number or 0)
    return counts


def failed_since(engine: Engine, since: datetime) -> int:
    """Runs that failed and finished since `since`."""
    stmt = select(func.count()).where(runs.c.status == RunStatus.FAILED.value, runs.c.finished_at >= since)
    with reading(engine) as conn:
        return conn.execute(stmt).scalar_one()


def last_failures(engine: Engine, limit: int = 10) -> list[Run]:
    """The runs that failed last."""
    stmt = select(*RUN_COLUMNS).where(runs.c.status == RunStatus.FAILED.value).order_by(runs.c.id.desc()).limit(limit)
    with reading(engine) as conn:
        return [to_run(row) for row in conn.execute(stmt)]


def last_outcome(engine: Engine, workflow: str) -> Run | None:
    """The workflow's run that ended last (by id), if any."""
    stmt = (
        select(*RUN_COLUMNS)
        .where(runs.c.workflow == workflow, runs.c.status.in_(FINISHED))
        .order_by(runs.c.id.desc())
        .limit(1)
    )
    with reading(engine) as conn:
        row = conn.execute(stmt).first()
    return None if row is None else to_run(row)


def windows(now: datetime) -> dict[str, datetime]:
    """The overview's time windows."""
    return {"24 h": now - timedelta(hours=24), "7 d": now - timedelta(days=7)}

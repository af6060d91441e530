"""Forgetting old runs' records (`retention` and `gristmill prune`, daemon/retention.py, decide which)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, func, select, update

from daemon.domain import RunStatus
from daemon.store.db import writing
from daemon.store.tables import corrections, model_calls, runs, shadow_calls

PRUNED_PREFIX = "pruned:"


def forget_runs(
    engine: Engine, workflow: str, before: datetime, note: str, *, dry_run: bool = False
) -> tuple[int, int]:
    """Forget finished runs of `workflow` that ended before `before`; (runs, model calls).

    Their model calls are deleted and their outputs, context and error cleared (`error`
    becomes `note`); the row itself stays so content already handled is not handled again.
    """
    old = (
        runs.c.workflow == workflow,
        runs.c.status.in_([status.value for status in RunStatus if status.finished]),
        func.coalesce(runs.c.finished_at, runs.c.created_at) < before,
        runs.c.error.is_(None) | ~runs.c.error.startswith(PRUNED_PREFIX, autoescape=True),
    )
    ids = select(runs.c.id).where(*old)
    calls = model_calls.c.run_id.in_(ids)
    with writing(engine) as conn:
        run_count = conn.execute(select(func.count()).select_from(runs).where(*old)).scalar_one()
        call_count = conn.execute(select(func.count()).select_from(model_calls).where(calls)).scalar_one()
        if run_count and not dry_run:
            conn.execute(model_calls.delete().where(calls))
            conn.execute(corrections.delete().where(corrections.c.run_id.in_(ids)))
            conn.execute(shadow_calls.delete().where(shadow_calls.c.run_id.in_(ids)))
            values = {"outputs": {}, "context": {}, "error": f"{PRUNED_PREFIX} {note}", "search_text": None}
            conn.execute(update(runs).where(*old).values(values))
    return run_count, call_count

"""Token and time use of the recorded model calls, per workflow and model, for `gristmill costs`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, case, distinct, func, select

from daemon.costs import Usage
from daemon.store.db import reading
from daemon.store.tables import model_calls, runs

NS = 1_000_000_000


def usage(engine: Engine, *, since: datetime | None = None) -> list[Usage]:
    """Runs, calls, tokens in and out and model time, per workflow and model, busiest first.

    Model time is the server's own duration of each call where it reported one, else the wall time.
    """
    seconds = case(
        (model_calls.c.total_duration_ns.is_not(None), model_calls.c.total_duration_ns / float(NS)),
        else_=func.coalesce(model_calls.c.wall_ms, 0) / 1000.0,
    )
    stmt = (
        select(
            runs.c.workflow,
            model_calls.c.model,
            func.count(distinct(model_calls.c.run_id)),
            func.count(),
            func.coalesce(func.sum(model_calls.c.prompt_tokens), 0),
            func.coalesce(func.sum(model_calls.c.completion_tokens), 0),
            func.coalesce(func.sum(seconds), 0.0),
        )
        .join(runs, runs.c.id == model_calls.c.run_id)
        .group_by(runs.c.workflow, model_calls.c.model)
        .order_by(func.sum(model_calls.c.prompt_tokens).desc(), runs.c.workflow, model_calls.c.model)
    )  # fmt: skip  (the columns read as one row of the report)
    if since is not None:
        stmt = stmt.where(model_calls.c.started_at >= since)
    with reading(engine) as conn:
        return [
            Usage(workflow, model, int(n_runs), int(n_calls), int(t_in), int(t_out), float(secs))
            for workflow, model, n_runs, n_calls, t_in, t_out, secs in conn.execute(stmt)
        ]

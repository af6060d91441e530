"""The run store's statements: built once, with bound parameters, and reused.

Building and hashing a statement per call cost more than running it. Bound parameter names start
with b_ (column names are reserved for SET and VALUES). Some differ by database where SQLite's
planner, which has no statistics here, needs telling which index serves (the claim).
"""

from __future__ import annotations

from dataclasses import fields
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite

from daemon.domain import Origin, Run, RunStatus
from daemon.errors import InvalidTransition
from daemon.runstate import check_transition, sources
from daemon.store.tables import meta, model_calls, runs

QUEUED, RUNNING = RunStatus.QUEUED, RunStatus.RUNNING
RUN_COLUMNS = tuple(runs.c[f.name] for f in fields(Run))
"""A Run's columns: what every statement that reads runs returns."""

INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
"""Each supported database's INSERT: the one with ON CONFLICT DO NOTHING (the store and `db copy` use it)."""

# The values that take a run's lease away, and that make it a run never tried (a retry, a renamed file's skipped run).
NO_LEASE: dict[str, Any] = {"lease_owner": None, "lease_expires_at": None}
FRESH: dict[str, Any] = {
    "status": RunStatus.QUEUED.value, "attempts": 0, "error": None, "outputs": {}, "not_before": None,
    "started_at": None, "finished_at": None, "search_text": None, **NO_LEASE,
}  # fmt: skip


@cache
def _allowed_from(target: RunStatus, via: RunStatus | None, retry: bool) -> tuple[str, ...]:
    allowed = sources(target, retry=retry)
    if via is not None:
        check_transition(via, target, retry=retry)
        allowed &= {via}
    return tuple(sorted(status.value for status in allowed))


def status_in(*statuses: str) -> ColumnElement[bool]:
    """WHERE clause: the run's status is one of `statuses`, written out in the SQL, never bound.

    SQLite's planner weighs a term against the WHERE of each partial index (ix_runs_queued_id:
    status = 'queued'); a bound status there marks the statement to be compiled anew whenever that
    parameter is bound again, which the driver does at every execution: every claim was parsed and
    planned again, 6 % of the store's CPU (BENCHMARKS.md, seventh round).
    """
    written = [_written(status) for status in statuses]
    return runs.c.status == written[0] if len(written) == 1 else runs.c.status.in_(written)


def _written(status: str) -> ColumnElement[str]:
    return literal_column(f"'{status}'")


def moving_to(target: RunStatus, *, via: RunStatus | None = None, retry: bool = False) -> ColumnElement[bool]:
    """WHERE clause: the run's status may become `target` (only from `via`, when given)."""
    allowed = _allowed_from(target, via, retry)
    if not allowed:
        raise InvalidTransition(str(via), str(target), retry)
    return status_in(*allowed)


def not_overlapping() -> ColumnElement[bool]:
    """A scheduled run waits while another run of its workflow is running (`overlap: queue`)."""
    other = runs.alias("other")
    busy = select(other.c.id).where(other.c.workflow == runs.c.workflow, other.c.status == _written(RUNNING.value))
    return (runs.c.trigger != Origin.SCHEDULE.value) | ~busy.exists()


@cache
def claim_statement(which: str, on_sqlite: bool) -> Any:
    """Lease a queued run: by id (due or not), or the oldest due one, optionally among workflows."""
    if which == "id":
        chosen = runs.c.id == bindparam("b_id")
    else:
        due = runs.c.not_before.is_(None) | (runs.c.not_before <= bindparam("b_now"))
        # The queued runs oldest first, from their partial index (ix_runs_queued_id): the status is
        # written out, since a bound parameter cannot match the index's WHERE; on SQLite, which has no
        # statistics here, likelihood() marks it as most rows so the planner walks that index in id
        # order. Otherwise it read every queued run through (status, not_before, id) and sorted them
        # for each claim: 0.5 ms with 2,000 queued, growing with the backlog (BENCHMARKS.md).
        queued = status_in(QUEUED.value)
        if on_sqlite:
            queued = func.likelihood(queued, literal_column("0.9"))
        oldest = select(runs.c.id).where(queued, due, not_overlapping())
        if which == "among":
            # On SQLite `workflow || ''` keeps the planner off (workflow, id), which walked the workflow's
            # whole history, finished runs included, for each claim.
            named = runs.c.workflow.concat(literal_column("''")) if on_sqlite else runs.c.workflow
            oldest = oldest.where(named.in_(bindparam("b_names", expanding=True)))
        # SKIP LOCKED lets PostgreSQL workers pass each other; SQLite renders no FOR UPDATE.
        oldest = oldest.order_by(runs.c.id).limit(1).with_for_update(skip_locked=True)
        chosen = runs.c.id == oldest.scalar_subquery()
    return (
        update(runs)
        .where(chosen, moving_to(RUNNING))
        .values(
            status=RUNNING.value,
            attempts=runs.c.attempts + 1,
            started_at=bindparam("b_now"),
            lease_owner=bindparam("b_owner"),
            lease_expires_at=bindparam("b_expires"),
        )  # fmt: skip
        .returning(*RUN_COLUMNS)
    )


@cache
def queued_from_statement(on_sqlite: bool) -> Any:
    """Count the queued runs from id b_id on, on their partial index (ix_runs_queued_id).

    The status is written out, as in the claim, since a bound parameter cannot match the index's
    WHERE; on SQLite likelihood() keeps the planner on that index, not (status, not_before, id),
    which would read every queued run, those before b_id too.
    """
    queued = status_in(QUEUED.value)
    if on_sqlite:
        queued = func.likelihood(queued, literal_column("0.9"))
    return select(func.count()).where(queued, runs.c.id >= bindparam("b_id"))


def fenced_update(target: RunStatus | None, values: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The fenced UPDATE setting `values`, and its parameters: bound ones reuse one compiled statement."""
    stmt = _fenced_statement(target)
    if any(isinstance(v, ColumnElement) for v in values.values()):
        return stmt.values(values), {}
    return stmt, values


@cache
def insert_absent_statement(columns: tuple[str, ...]) -> Any:
    """SQLite: INSERT … SELECT the values WHERE no run of the workflow has the dedupe key; RETURNING its id."""
    values = {name: bindparam(name, type_=runs.c[name].type) for name in columns}
    taken = select(runs.c.id).where(runs.c.workflow == values["workflow"], runs.c.dedupe_key == values["dedupe_key"])
    chosen = select(*values.values()).where(~taken.exists())
    return sqlite.insert(runs).from_select(columns, chosen).on_conflict_do_nothing().returning(runs.c.id)


@cache
def _fenced_statement(target: RunStatus | None) -> Any:
    """UPDATE … WHERE the run is running under the lease of owner b_owner; SET from the parameters."""
    allowed = status_in(RUNNING.value) if target is None else moving_to(target, via=RUNNING)
    return update(runs).where(runs.c.id == bindparam("b_id"), allowed, runs.c.lease_owner == bindparam("b_owner"))


KNOWN = select(*RUN_COLUMNS).where(runs.c.workflow == bindparam("b_workflow"), runs.c.dedupe_key == bindparam("b_key"))
RECORD_CALL = model_calls.insert().returning(model_calls.c.id)
OUTPUTS = select(runs.c.outputs).where(runs.c.id == bindparam("b_id"))

# The looks an idle daemon takes every few seconds: the heartbeat's sweep, the health check, the
# progress line's two counts, a worker's next due run (BENCHMARKS.md, nineteenth round).
RUNNING_RUNS = select(*RUN_COLUMNS).where(runs.c.status == RUNNING.value).order_by(runs.c.id)
WAITING = (QUEUED, RUNNING)
IN_QUEUE = (
    select(runs.c.status, func.count())
    .where(runs.c.status.in_([status.value for status in WAITING]))
    .group_by(runs.c.status)
)
ENDED = tuple(status for status in RunStatus if status.finished)
# A count per status, not GROUP BY status: SQLite's planner would walk the status index for the
# grouping's order, every run ever recorded, instead of the ended runs from b_since on.
ENDED_SINCE = select(*(func.count().filter(runs.c.status == status.value) for status in ENDED)).where(
    runs.c.finished_at >= bindparam("b_since")
)
NEXT_DUE = select(func.min(runs.c.not_before)).where(
    runs.c.status == QUEUED.value, runs.c.not_before > bindparam("b_now")
)
META_VALUE = select(meta.c.value).where(meta.c.key == bindparam("b_key"))

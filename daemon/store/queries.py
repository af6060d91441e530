"""RunQueries: what the store answers without writing (runs, their calls, counts, the queue's state).

`RunStore` (store/runs.py) is these reads plus the writes; the reads live here so that a reader of
the queueing and leasing code meets only that.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Row, func, select

from daemon.domain import ModelCall, Origin, Run, RunStatus
from daemon.errors import RunNotFound
from daemon.store.db import reading
from daemon.store.statements import (
    ENDED,
    ENDED_SINCE,
    IN_QUEUE,
    KNOWN,
    META_VALUE,
    NEXT_DUE,
    RUN_COLUMNS,
    WAITING,
    queued_from_statement,
)  # fmt: skip
from daemon.store.tables import model_calls, runs

QUEUED, RUNNING, SUCCEEDED = RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.SUCCEEDED
_CALL_COLUMNS = tuple(model_calls.c[f.name] for f in fields(ModelCall))


def real_runs() -> ColumnElement[bool]:
    """WHERE clause: runs that really happened; dry runs are consumed by nothing (digests, eval, since)."""
    return runs.c.dry_run.is_(False)


def to_run(row: Row[Any]) -> Run:
    """A row of RUN_COLUMNS as a Run."""
    return run_of(dict(row._mapping))


def run_of(values: dict[str, Any]) -> Run:
    """RUN_COLUMNS' values by name, as read, as a Run (the dict is used up)."""
    values["status"] = RunStatus(values["status"])
    values["trigger"] = Origin(values["trigger"])
    return Run(**values)


def inserted(run_id: int, values: dict[str, Any]) -> Run:
    """The run just inserted as `values` (`queueing.new_values`, or a skipped duplicate's), as read back.

    Not read back: returning every column and converting each cost a queued file more than its
    insert's own Python (BENCHMARKS.md, "Issue 17, sixteenth round"). A new run has no lease, no start
    and no due time; its timestamps are stored as UTC, and read back so; its context is stored as
    JSON, and read back as JSON reads it (a tuple as a list). SQLite's store only: its JSON is the
    `json` module's, where PostgreSQL's strings take a lossless form of their own.
    """
    finished = values.get("finished_at")
    return Run(
        id=run_id, workflow=values["workflow"], status=RunStatus(values["status"]), trigger=Origin(values["trigger"]),
        input_path=values["input_path"], sha256=values["sha256"], dedupe_key=values["dedupe_key"],
        context=json.loads(json.dumps(values["context"])), outputs=values["outputs"], attempts=values["attempts"],
        max_attempts=values["max_attempts"], error=values.get("error"), created_at=values["created_at"].astimezone(UTC),
        started_at=None, finished_at=None if finished is None else finished.astimezone(UTC), not_before=None,
        lease_owner=None, lease_expires_at=None, dry_run=values["dry_run"],
    )  # fmt: skip


class RunQueries:
    """The store's reads; each on a connection of its own that never waits for writers."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self._engine, self._clock = engine, clock

    def active(self, workflow: str) -> Run | None:
        """The oldest queued or running run of `workflow`, if any."""
        stmt = select(*RUN_COLUMNS).where(runs.c.workflow == workflow, runs.c.status.in_([QUEUED.value, RUNNING.value]))
        with reading(self._engine) as conn:
            row = conn.execute(stmt.order_by(runs.c.id).limit(1)).first()
        return None if row is None else to_run(row)

    def last_succeeded(self, workflow: str) -> Run | None:
        """The succeeded real (not dry) run of `workflow` that finished last, if any."""
        stmt = select(*RUN_COLUMNS).where(runs.c.workflow == workflow, runs.c.status == SUCCEEDED.value, real_runs())
        stmt = stmt.order_by(runs.c.finished_at.desc(), runs.c.id.desc()).limit(1)
        with reading(self._engine) as conn:
            row = conn.execute(stmt).first()
        return None if row is None else to_run(row)

    def succeeded_since(self, workflow: str, since: datetime | None, limit: int) -> list[Run]:
        """Succeeded real (not dry) runs of `workflow` that finished after `since`, oldest first, at most `limit`."""
        stmt = select(*RUN_COLUMNS).where(runs.c.workflow == workflow, runs.c.status == SUCCEEDED.value, real_runs())
        if since is not None:
            stmt = stmt.where(runs.c.finished_at > since)
        stmt = stmt.order_by(runs.c.finished_at, runs.c.id).limit(limit)
        with reading(self._engine) as conn:
            return [to_run(row) for row in conn.execute(stmt)]

    def calls(self, run_id: int) -> list[ModelCall]:
        """The model calls of a run, in the order they were made."""
        stmt = select(*_CALL_COLUMNS).where(model_calls.c.run_id == run_id).order_by(model_calls.c.id)
        with reading(self._engine) as conn:
            return [ModelCall(**row._mapping) for row in conn.execute(stmt)]

    def get(self, run_id: int) -> Run:
        """The run with this id; RunNotFound otherwise."""
        with reading(self._engine) as conn:
            row = conn.execute(select(*RUN_COLUMNS).where(runs.c.id == run_id)).first()
        if row is None:
            raise RunNotFound(run_id)
        return to_run(row)

    def history(
        self, *, workflow: str | None = None, status: RunStatus | None = None, limit: int = 50, real_only: bool = False
    ) -> list[Run]:
        """Runs, newest first, optionally of one workflow and one status; `real_only`: no dry runs."""
        stmt = select(*RUN_COLUMNS).order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(limit)
        if real_only:
            stmt = stmt.where(real_runs())
        if workflow is not None:
            stmt = stmt.where(runs.c.workflow == workflow)
        if status is not None:
            stmt = stmt.where(runs.c.status == RunStatus(status).value)
        with reading(self._engine) as conn:
            return [to_run(row) for row in conn.execute(stmt)]

    def counts(self, *, workflow: str | None = None) -> dict[RunStatus, int]:
        """How many runs are in each status (every status present, zeros included)."""
        stmt = select(runs.c.status, func.count()).group_by(runs.c.status)
        if workflow is not None:
            stmt = stmt.where(runs.c.workflow == workflow)
        with reading(self._engine) as conn:
            found = {RunStatus(status): count for status, count in conn.execute(stmt)}
        return {status: found.get(status, 0) for status in RunStatus}

    def in_queue(self) -> dict[RunStatus, int]:
        """How many runs are queued and how many running: a short walk of the status index, whatever the history."""
        with reading(self._engine) as conn:
            found = {RunStatus(status): count for status, count in conn.execute(IN_QUEUE)}
        return {status: found.get(status, 0) for status in WAITING}

    def ended_since(self, since: datetime) -> dict[RunStatus, int]:
        """How many runs ended at or after `since` (the store's clock), by outcome, zeros included.

        Reads the index of ended runs by time (ix_runs_finished_at_status) from `since` on: the
        recent runs only, where `counts` walks every run ever recorded.
        """
        with reading(self._engine) as conn:
            found = conn.execute(ENDED_SINCE, {"b_since": since}).one()
        return dict(zip(ENDED, found, strict=True))

    def now(self) -> datetime:
        """The store's clock: the time it records as a run's creation and end."""
        return self._clock()

    def queued_from(self, run_id: int) -> int:
        """How many runs with an id from `run_id` on are still queued, by any node's workers or none.

        What a scan asks to queue a backlog only as fast as the workers take it: cheap, since it
        reads the partial index of the queued runs, never the history.
        """
        with reading(self._engine) as conn:
            stmt = queued_from_statement(conn.dialect.name == "sqlite")
            return conn.execute(stmt, {"b_id": run_id}).scalar_one()

    def next_due(self) -> datetime | None:
        """When the earliest queued run that is not due yet becomes due; None if there is none."""
        with reading(self._engine) as conn:
            return conn.execute(NEXT_DUE, {"b_now": self._clock()}).scalar()

    def with_content(self, sha256: str) -> list[Run]:
        """Every run of any workflow on this content (sha256), oldest first."""
        stmt = select(*RUN_COLUMNS).where(runs.c.sha256 == sha256).order_by(runs.c.id)
        with reading(self._engine) as conn:
            return [to_run(row) for row in conn.execute(stmt)]

    def known(self, workflow: str, dedupe_key: str) -> Run | None:
        """The run of `workflow` recorded under `dedupe_key`, if any."""
        with reading(self._engine) as conn:
            return self._known(conn, workflow, dedupe_key)

    def find_by_context(self, workflow: str, path: tuple[str, ...], value: str) -> Run | None:
        """The first run of `workflow` whose context holds `value` at `path`: a second "once" key (a mail's place).

        Not indexed: the workflow's own runs are scanned, which suits keys looked up once per arrival.
        """
        found = runs.c.context[path].as_string() == value
        stmt = select(*RUN_COLUMNS).where(runs.c.workflow == workflow, found).order_by(runs.c.id).limit(1)
        with reading(self._engine) as conn:
            row = conn.execute(stmt).first()
        return None if row is None else to_run(row)

    def get_meta(self, key: str) -> str | None:
        """A value of the small key/value table."""
        with reading(self._engine) as conn:
            return conn.execute(META_VALUE, {"b_key": key}).scalar()

    @staticmethod
    def _known(conn: Connection, workflow: str, key: str) -> Run | None:
        row = conn.execute(KNOWN, {"b_workflow": workflow, "b_key": key}).first()
        return None if row is None else to_run(row)

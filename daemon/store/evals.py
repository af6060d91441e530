"""Stored evals and shadow answers, and the runs an eval or an export reads (SQLite and PostgreSQL alike)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Row, select
from sqlalchemy.exc import IntegrityError

from daemon.domain import Run, RunStatus
from daemon.errors import UsageError
from daemon.evals.values import Answer, Timing
from daemon.store.db import reading, writing
from daemon.store.queries import to_run
from daemon.store.runs import utcnow
from daemon.store.statements import RUN_COLUMNS
from daemon.store.tables import evals, runs, shadow_calls


def recorded_runs(
    engine: Engine,
    workflow: str,
    *,
    statuses: Collection[RunStatus] | None = None,
    since: datetime | None = None,
    limit: int | None = None,
    dry_runs: bool = True,
) -> list[Run]:
    """The workflow's runs (of these statuses, finished after `since`), the newest `limit`, oldest first."""
    stmt = select(*RUN_COLUMNS).where(runs.c.workflow == workflow).order_by(runs.c.id.desc())
    if not dry_runs:
        stmt = stmt.where(runs.c.dry_run.is_(False))
    if statuses is not None:
        stmt = stmt.where(runs.c.status.in_([RunStatus(s).value for s in statuses]))
    if since is not None:
        stmt = stmt.where(runs.c.finished_at > since)
    if limit is not None:
        stmt = stmt.limit(limit)
    with reading(engine) as conn:
        found = [to_run(row) for row in conn.execute(stmt)]
    return found[::-1]


def has_due_runs(engine: Engine, now: datetime) -> bool:
    """Whether some queued run may start now (shadow calls give way to it)."""
    due = runs.c.not_before.is_(None) | (runs.c.not_before <= now)
    stmt = select(runs.c.id).where(runs.c.status == RunStatus.QUEUED.value, due).limit(1)
    with reading(engine) as conn:
        return conn.execute(stmt).first() is not None


@dataclass(frozen=True)
class EvalRecord:
    """One stored eval: a candidate compared with a workflow's recorded runs."""

    id: int
    workflow: str
    model: str
    source: str  # replay or shadow
    created_at: datetime
    since: datetime | None
    run_limit: int | None
    runs: int
    agreement: float | None
    figures: dict[str, Any]  # {"steps": {step id: figures}}


def _to_eval(row: Row[Any]) -> EvalRecord:
    return EvalRecord(**row._mapping)


class EvalStore:
    """Records evals and reads them back; safe to share between threads."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self._engine, self._clock = engine, clock

    def add(
        self, workflow: str, model: str, source: str, *, since: datetime | None, run_limit: int | None,
        runs_seen: int, agreement: float | None, figures: dict[str, Any],
    ) -> EvalRecord:  # fmt: skip
        """Store an eval's figures; the stored record (with its id)."""
        values = {
            "workflow": workflow, "model": model, "source": source, "created_at": self._clock(), "since": since,
            "run_limit": run_limit, "runs": runs_seen, "agreement": agreement, "figures": figures,
        }  # fmt: skip
        with writing(self._engine) as conn:
            row = conn.execute(evals.insert().values(values).returning(*evals.c)).one()
        return _to_eval(row)

    def get(self, eval_id: int) -> EvalRecord:
        """The eval with this id; UsageError when there is none."""
        with reading(self._engine) as conn:
            row = conn.execute(select(*evals.c).where(evals.c.id == eval_id)).first()
        if row is None:
            raise UsageError(f"no eval with id {eval_id}; list them with: gristmill eval --list")
        return _to_eval(row)

    def recent(self, *, workflow: str | None = None, limit: int = 50) -> list[EvalRecord]:
        """Stored evals, newest first."""
        stmt = select(*evals.c).order_by(evals.c.id.desc()).limit(limit)
        if workflow is not None:
            stmt = stmt.where(evals.c.workflow == workflow)
        with reading(self._engine) as conn:
            return [_to_eval(row) for row in conn.execute(stmt)]


class ShadowStore:
    """Shadow answers: a candidate's answer to a step of a live run, recorded once per (run, step, model)."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self._engine, self._clock = engine, clock

    def record(self, answer: Answer, started_at: datetime | None = None) -> bool:
        """Keep an answer; False when this run's step already has one from that model."""
        t = answer.timing
        values = {
            "run_id": answer.run_id, "step_id": answer.step_id, "model": answer.model, "server": answer.server,
            "output": answer.output, "invalid": answer.invalid, "answer": answer.raw, "calls": t.calls,
            "prompt_tokens": t.prompt_tokens, "completion_tokens": t.completion_tokens,
            "total_duration_ns": t.total_ns, "eval_duration_ns": t.eval_ns, "wall_ms": t.wall_ms,
            "started_at": started_at or self._clock(),
        }  # fmt: skip
        try:
            with writing(self._engine) as conn:
                conn.execute(shadow_calls.insert().values(values))
        except IntegrityError:
            return False  # asked twice (a restart between asking and recording): the first one stays
        return True

    def answered(self, run_id: int) -> set[tuple[str, str]]:
        """The (step, model) pairs of a run that already have a shadow answer."""
        stmt = select(shadow_calls.c.step_id, shadow_calls.c.model).where(shadow_calls.c.run_id == run_id)
        with reading(self._engine) as conn:
            return {(step, model) for step, model in conn.execute(stmt)}

    def answers(self, workflow: str, model: str | None = None) -> list[Answer]:
        """The shadow answers beside the workflow's runs (of one model, when given), oldest first."""
        of_workflow = select(runs.c.id).where(runs.c.workflow == workflow)
        stmt = select(*shadow_calls.c).where(shadow_calls.c.run_id.in_(of_workflow)).order_by(shadow_calls.c.id)
        if model is not None:
            stmt = stmt.where(shadow_calls.c.model == model)
        with reading(self._engine) as conn:
            return [_to_answer(row) for row in conn.execute(stmt)]

    def models(self, workflow: str) -> list[str]:
        """The candidate models that answered beside the workflow's runs, by name."""
        of_workflow = select(runs.c.id).where(runs.c.workflow == workflow)
        stmt = select(shadow_calls.c.model).where(shadow_calls.c.run_id.in_(of_workflow)).distinct()
        with reading(self._engine) as conn:
            return sorted(conn.scalars(stmt))


def _to_answer(row: Row[Any]) -> Answer:
    v = row._mapping
    timing = Timing(
        calls=v["calls"], wall_ms=v["wall_ms"], completion_tokens=v["completion_tokens"],
        eval_ns=v["eval_duration_ns"], prompt_tokens=v["prompt_tokens"], total_ns=v["total_duration_ns"],
    )  # fmt: skip
    return Answer(
        run_id=v["run_id"], step_id=v["step_id"], model=v["model"], output=v["output"], invalid=v["invalid"],
        timing=timing, raw=v["answer"], server=v["server"],
    )  # fmt: skip

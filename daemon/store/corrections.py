"""Corrections: what a person says a step's output should have been. The run's record never changes.

For other code (eval, export, `--refile`): `CorrectionStore.effective()` gives, per (run, step),
the latest correction, whose `output` is the step's output with every correction so far applied:
the reference to compare a model with, or the answer to train on.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, Row, func, select, update

from daemon.errors import RunNotFound, UsageError
from daemon.store.db import reading, writing
from daemon.store.runs import utcnow
from daemon.store.tables import corrections, runs


class CorrectionKind(StrEnum):
    LABEL = "label"  # a classify step's label
    FIELDS = "fields"  # some fields of an extract step (or a prompt step with a schema)
    TEXT = "text"  # a summarise or free prompt step's text


@dataclass(frozen=True)
class Change:
    """One correction as a person gives it; build it with `Change.label_of`, `fields_of` or `text_of`."""

    kind: CorrectionKind
    label: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    text: str | None = None

    @classmethod
    def label_of(cls, label: str) -> Change:
        return cls(CorrectionKind.LABEL, label=label)

    @classmethod
    def fields_of(cls, values: dict[str, Any]) -> Change:
        if not values:
            raise UsageError("give at least one FIELD=VALUE to correct")
        return cls(CorrectionKind.FIELDS, fields=dict(values))

    @classmethod
    def text_of(cls, text: str) -> Change:
        if not text.strip():
            raise UsageError("the corrected text is empty; give the text the step should have produced")
        return cls(CorrectionKind.TEXT, text=text)

    def payload(self) -> dict[str, Any]:
        """What is stored as `change`: {"label": …}, {"fields": {…}} or {"text": …}."""
        if self.kind is CorrectionKind.LABEL:
            return {"label": self.label}
        if self.kind is CorrectionKind.FIELDS:
            return {"fields": self.fields}
        return {"text": self.text}

    def check_fits(self, step_id: str, output: Any) -> None:
        """UsageError unless this kind of correction fits the step's recorded output."""
        if not isinstance(output, dict):
            raise UsageError(f"step '{step_id}' has no output that can be corrected")
        if self.kind is CorrectionKind.LABEL and "label" not in output:
            raise UsageError(f"step '{step_id}' has no label to correct; --label is for classify steps")
        if self.kind is CorrectionKind.TEXT and "text" not in output:
            raise UsageError(f"step '{step_id}' has no text to correct; --text is for summarise and prompt steps")
        if self.kind is CorrectionKind.FIELDS:
            unknown = sorted(set(self.fields) - set(output))
            if unknown or "label" in output or "text" in output:
                known = ", ".join(sorted(k for k in output if not k.startswith("_"))) or "none"
                raise UsageError(
                    f"step '{step_id}' has no field {', '.join(unknown) or 'to set'}; its fields are: {known}"
                )

    def apply(self, output: dict[str, Any]) -> dict[str, Any]:
        """The step's output with this correction applied."""
        if self.kind is CorrectionKind.LABEL:
            # A person's label is certain; the model's doubts about it no longer apply.
            kept = {k: v for k, v in output.items() if k not in ("reason", "guess")}
            return kept | {"label": self.label, "confidence": 1.0}
        if self.kind is CorrectionKind.FIELDS:
            return output | self.fields
        return output | {"text": self.text}


@dataclass(frozen=True)
class Correction:
    """A recorded correction of one step of one run."""

    id: int
    run_id: int
    step_id: str
    kind: CorrectionKind
    change: dict[str, Any]  # Change.payload()
    output: dict[str, Any]  # the step's output with this and every earlier correction applied
    original: dict[str, Any] | None  # the step's recorded output when this correction was made
    author: str
    created_at: datetime
    # What `correct --refile` did, per route step: an intent while it works, then the outcome; None: no refile.
    refile: dict[str, Any] | None = None


def _to_correction(row: Row[Any]) -> Correction:
    values = dict(row._mapping)
    return Correction(**values | {"kind": CorrectionKind(values["kind"])})


class CorrectionStore:
    """Records and reads corrections; safe to share between threads."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self._engine, self._clock = engine, clock

    def add(self, run_id: int, step_id: str, change: Change, *, author: str) -> Correction:
        """Record `change` of step `step_id` of run `run_id`; RunNotFound, or UsageError when it does not fit."""
        with writing(self._engine) as conn:
            outputs = conn.execute(select(runs.c.outputs).where(runs.c.id == run_id)).scalar()
            if outputs is None:
                raise RunNotFound(run_id)
            if step_id not in outputs or step_id.startswith("_"):
                steps = ", ".join(s for s in outputs if not s.startswith("_")) or "none yet"
                raise UsageError(f"run {run_id} has no output of step '{step_id}'; its steps are: {steps}")
            original = outputs[step_id]
            change.check_fits(step_id, original)
            earlier = conn.execute(
                select(corrections.c.output)
                .where(corrections.c.run_id == run_id, corrections.c.step_id == step_id)
                .order_by(corrections.c.id.desc())
                .limit(1)
            ).scalar()
            values = {
                "run_id": run_id, "step_id": step_id, "kind": change.kind.value, "change": change.payload(),
                "output": change.apply(earlier if earlier is not None else original), "original": original,
                "author": author, "created_at": self._clock(),
            }  # fmt: skip
            row = conn.execute(corrections.insert().values(values).returning(*corrections.c)).one()
        return _to_correction(row)

    def set_refile(self, correction_id: int, refile: dict[str, Any]) -> None:
        """Record what `--refile` did (or, first, what it is about to do) beside a correction.

        Durable (a power loss included) when it returns: it holds a move's intent before the move.
        """
        stmt = update(corrections).where(corrections.c.id == correction_id).values(refile=refile)
        with writing(self._engine, durable=True) as conn:
            conn.execute(stmt)

    def latest(self, run_id: int, step_id: str) -> Correction | None:
        """The newest correction of a run's step, if any."""
        stmt = (
            select(*corrections.c)
            .where(corrections.c.run_id == run_id, corrections.c.step_id == step_id)
            .order_by(corrections.c.id.desc())
            .limit(1)
        )
        with reading(self._engine) as conn:
            row = conn.execute(stmt).first()
        return None if row is None else _to_correction(row)

    def for_run(self, run_id: int) -> builtins.list[Correction]:
        """Every correction of a run, oldest first."""
        stmt = select(*corrections.c).where(corrections.c.run_id == run_id).order_by(corrections.c.id)
        with reading(self._engine) as conn:
            return [_to_correction(row) for row in conn.execute(stmt)]

    def corrected(self, run_ids: Iterable[int]) -> set[int]:
        """Which of these runs have at least one correction."""
        ids = builtins.list(run_ids)
        if not ids:
            return set()
        stmt = select(corrections.c.run_id).where(corrections.c.run_id.in_(ids)).distinct()
        with reading(self._engine) as conn:
            return set(conn.scalars(stmt))

    def effective(
        self, *, workflow: str | None = None, run_ids: Iterable[int] | None = None
    ) -> dict[tuple[int, str], Correction]:
        """The latest correction of each (run, step), of one workflow and/or some runs; the reference for eval."""
        latest = select(func.max(corrections.c.id)).group_by(corrections.c.run_id, corrections.c.step_id)
        stmt = select(*corrections.c).where(corrections.c.id.in_(latest))
        if workflow is not None:
            stmt = stmt.where(corrections.c.run_id.in_(select(runs.c.id).where(runs.c.workflow == workflow)))
        if run_ids is not None:
            stmt = stmt.where(corrections.c.run_id.in_(builtins.list(run_ids)))
        with reading(self._engine) as conn:
            found = [_to_correction(row) for row in conn.execute(stmt)]
        return {(c.run_id, c.step_id): c for c in found}

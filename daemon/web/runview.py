"""One run as its page shows it: each step's output, its model calls, its corrections and its form."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from daemon.commands.correct import CLASSIFY, EXTRACT, PROMPT, SUMMARISE
from daemon.domain import ModelCall, Run
from daemon.store.corrections import Correction, CorrectionKind
from daemon.workflow import Workflow


@dataclass
class StepView:
    """A step of a run: what it output, what a person corrected it to, and which correction fits it."""

    step_id: str
    kind: str | None  # from the workflow file; None when the file no longer has the step
    output: Any
    corrected: Any = None  # the output with every correction applied, when there is one
    calls: list[ModelCall] = field(default_factory=list)
    form: CorrectionKind | None = None
    labels: list[str] = field(default_factory=list)  # a label form's choices
    fields: list[tuple[str, str]] = field(default_factory=list)  # a fields form's (name, current text)

    @property
    def current(self) -> Any:
        return self.corrected if self.corrected is not None else self.output


def step_views(
    run: Run, calls: list[ModelCall], corrections: list[Correction], workflow: Workflow | None
) -> list[StepView]:
    """The run's steps in the workflow's order (steps it no longer has last), with their calls."""
    order = workflow.step_ids if workflow is not None else []
    step_ids = [s for s in order if s in run.outputs] + [
        s for s in run.outputs if s not in order and not s.startswith("_")
    ]
    latest = {c.step_id: c.output for c in corrections}  # oldest first, so the last one wins
    views = []
    for step_id in step_ids:
        step = _step(workflow, step_id)
        view = StepView(
            step_id, step.kind.name if step is not None else None, run.outputs[step_id], latest.get(step_id)
        )
        view.calls = [c for c in calls if c.step_id == step_id]
        _add_form(view, step)
        views.append(view)
    return views


def field_text(value: Any) -> str:
    """A field's value as the form shows it, and as an unchanged submission gives it back."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def changed_fields(view: StepView, submitted: dict[str, str]) -> list[str]:
    """`FIELD=VALUE` for each field whose submitted text differs from what the form showed."""
    shown = dict(view.fields)
    return [f"{name}={text}" for name, text in submitted.items() if name in shown and text != shown[name]]


def _step(workflow: Workflow | None, step_id: str) -> Any:
    if workflow is None:
        return None
    try:
        return workflow.step(step_id)
    except KeyError:
        return None


def _add_form(view: StepView, step: Any) -> None:
    output = view.current
    if step is None or not isinstance(output, dict):
        return
    kind = step.kind.name
    if kind == CLASSIFY:
        view.form, view.labels = CorrectionKind.LABEL, list(step.spec.labels)
    elif any(isinstance(v, dict) and set(v) == {"sha256", "chars"} for v in output.values()):
        return  # `record: metadata`: only digests were kept, nothing a person could correct in place
    elif kind == EXTRACT or (kind == PROMPT and "text" not in output):
        view.form = CorrectionKind.FIELDS
        view.fields = [(name, field_text(value)) for name, value in output.items() if not name.startswith("_")]
    elif kind in (SUMMARISE, PROMPT) and isinstance(output.get("text"), str):
        view.form = CorrectionKind.TEXT

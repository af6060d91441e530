"""`gristmill export`: each usable step answer of a workflow's runs as a training example, split by run.

The example is the question as it was asked (the recorded system and user messages) and the
answer the step should have given: the correction where there is one, else the recorded output,
written as the step asks for it (`StepKind.training_answer`: a classify step's JSON, extract's
fields, a summary's text). What cannot be an example is counted with its reason.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from daemon.domain import Run, RunStatus
from daemon.errors import UsageError
from daemon.evals.questions import cases
from daemon.evals.values import Case, Excluded
from daemon.export.chat import shape_problem
from daemon.store import RunStore
from daemon.workflow import Step, Workflow


class Only(StrEnum):
    ALL = "all"
    CORRECTED = "corrected"


@dataclass(frozen=True)
class Example:
    """One training example: a run's step, its chat, and whether its answer is a person's correction."""

    run_id: int
    step_id: str
    messages: list[dict[str, str]]
    corrected: bool


@dataclass
class Dataset:
    """The examples, split by run, and what was left out and why."""

    train: list[Example] = field(default_factory=list)
    valid: list[Example] = field(default_factory=list)
    runs: int = 0
    left_out: Counter[str] = field(default_factory=Counter)  # reason → how many run steps


def exported_steps(workflow: Workflow, step_id: str | None) -> list[Step]:
    """The steps whose answers become examples: `step_id`, else every step that asks the model."""
    if step_id is None:
        return [step for step in workflow.steps if step.kind.calls_model]
    try:
        step = workflow.step(step_id)
    except KeyError:
        raise UsageError(
            f"workflow '{workflow.name}' has no step '{step_id}'; its steps are: {', '.join(workflow.step_ids)}"
        ) from None
    if not step.kind.calls_model:
        raise UsageError(f"step '{step_id}' is a {step.kind.name} step; it asks no model, so it has no answers")
    return [step]


def run_reason(run: Run) -> str | None:
    """Why a run gives no examples at all; None when it may."""
    if run.dry_run:
        return "dry run"
    if run.status is not RunStatus.SUCCEEDED:
        return {RunStatus.FAILED: "failed", RunStatus.SKIPPED: "skipped"}.get(run.status, "not finished")
    return None


def build(
    store: RunStore, workflow: Workflow, steps: list[Step], runs: Iterable[Run], *, only: Only, valid_share: float,
    advance: Callable[[], None] = lambda: None,
) -> Dataset:  # fmt: skip
    """The dataset of these runs' steps (a run's examples all go to train or all to valid)."""
    data, usable, by_run = Dataset(), [], {}
    chosen = list(runs)
    data.runs = len(chosen)
    for run in chosen:
        why = run_reason(run)
        if why is not None:
            data.left_out[why] += len(steps)
        else:
            usable.append(run)
    for item in cases(store, usable, steps):
        example = _example(item, {s.step_id: s for s in steps}, only, data.left_out)
        if example is not None:
            by_run.setdefault(example.run_id, []).append(example)
        advance()
    valid_runs = split(list(by_run), valid_share)
    for run_id, examples in by_run.items():
        (data.valid if run_id in valid_runs else data.train).extend(examples)
    return data


def _example(item: Case | Excluded, steps: dict[str, Step], only: Only, left_out: Counter[str]) -> Example | None:
    if isinstance(item, Excluded):
        left_out[item.why.value] += 1
        return None
    if only is Only.CORRECTED and not item.corrected:
        left_out["not corrected (--only corrected)"] += 1
        return None
    step = steps[item.step_id]
    answer = step.kind.training_answer(step.spec, item.reference)
    if answer is None:
        left_out["no label or answer (review)"] += 1
        return None
    messages = [{"role": m["role"], "content": m["content"]} for m in item.messages]
    messages.append({"role": "assistant", "content": answer})
    problem = shape_problem(messages)
    if problem is not None:
        left_out[f"not a chat a trainer reads ({problem})"] += 1
        return None
    return Example(item.run_id, item.step_id, messages, item.corrected)


def share_of(run_id: int) -> float:
    """Where a run falls in [0, 1): from a hash of its id, so the split is the same every time."""
    return int.from_bytes(hashlib.sha256(f"run {run_id}".encode()).digest()[:8], "big") / 2**64


def split(run_ids: list[int], valid_share: float) -> set[int]:
    """The runs whose examples go to valid: those whose hash falls below `valid_share`.

    mlx-lm refuses an empty validation set, so with two runs or more and a share above 0, the run
    with the lowest hash goes to valid when none fell below, and the highest stays in train; a
    single run is all training.
    """
    if len(run_ids) < 2:
        return set()
    ranked = sorted(run_ids, key=share_of)
    valid = {run_id for run_id in ranked if share_of(run_id) < valid_share}
    if valid_share > 0:
        valid.add(ranked[0])
        valid.discard(ranked[-1])
    return valid

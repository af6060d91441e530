"""`gristmill eval`: a candidate model compared with a workflow's recorded runs, step by step.

A replay asks the candidate each recorded question again (through the model-server layer, acting
on nothing); a shadow eval reads the answers shadow mode recorded beside live runs and asks
nothing. Either way the reference is the correction where there is one, else the recorded output,
and the figures are stored (`evals`) so they can be listed and shown again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from daemon.domain import Run, RunStatus
from daemon.errors import ModelMissing, UsageError
from daemon.evals.candidate import ask_case
from daemon.evals.figures import Tally, overall
from daemon.evals.questions import cases
from daemon.evals.values import Answer, Case, Excluded, Unusable
from daemon.llm.base import ModelBackend
from daemon.steps import Comparison
from daemon.steps.agreement import public
from daemon.store import RunStore
from daemon.store.evals import EvalRecord, EvalStore, ShadowStore, recorded_runs
from daemon.workflow import Step, Workflow

REPLAY, SHADOW = "replay", "shadow"


@dataclass(frozen=True)
class Selection:
    """Which recorded runs an eval reads: succeeded ones that finished after `since`, the newest `limit`."""

    since: datetime | None = None
    limit: int | None = None


def comparable_steps(workflow: Workflow) -> list[Step]:
    """The steps whose answers can be compared (their kind says so); UsageError when there is none."""
    steps = [step for step in workflow.steps if step.kind.comparable]
    if not steps:
        kinds = ", ".join(dict.fromkeys(step.kind.name for step in workflow.steps))
        raise UsageError(
            f"workflow '{workflow.name}' has no step whose answers can be compared (classify, extract); "
            f"its steps are of kinds {kinds}"
        )
    return steps


def judge(step: Step, case: Case, answer: Answer) -> Comparison | None:
    """How the answer compares with the case's reference; None when it was invalid."""
    if answer.output is None:
        return None
    return step.kind.compare(step.spec, public(case.reference), public(answer.output))


def replay(
    store: RunStore, workflow: Workflow, model: str, backend: ModelBackend, chosen: Selection, *,
    workers: int = 1, started: Callable[[int], None] = lambda total: None, advance: Callable[[], None] = lambda: None,
) -> EvalRecord:  # fmt: skip
    """Ask `model` every comparable recorded question of the workflow again; store and return the eval."""
    if not backend.has_model(model):
        raise ModelMissing(model, backend.url)
    steps = {step.step_id: step for step in comparable_steps(workflow)}
    runs = _runs(store, workflow, chosen)
    tallies = {step_id: Tally(step.kind.name) for step_id, step in steps.items()}
    todo = _sort(cases(store, runs, list(steps.values())), tallies)
    started(len(todo))

    def ask(case: Case) -> Answer:
        step = steps[case.step_id]
        return ask_case(step.kind, step.spec, backend, model, case)

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="eval") as pool:
        for case, answer in zip(todo, pool.map(ask, todo), strict=True):
            tallies[case.step_id].add(case, answer, judge(steps[case.step_id], case, answer))
            advance()
    return _store(store, workflow, model, REPLAY, chosen, len(runs), tallies)


def from_shadow(store: RunStore, workflow: Workflow, model: str | None, chosen: Selection) -> EvalRecord:
    """The same figures from the answers shadow mode recorded beside live runs; nothing is asked."""
    shadows = ShadowStore(store.engine)
    model = model or _only_model(shadows.models(workflow.name), workflow.name)
    steps = {step.step_id: step for step in comparable_steps(workflow)}
    runs = _runs(store, workflow, chosen)
    answered = {(a.run_id, a.step_id): a for a in shadows.answers(workflow.name, model)}
    tallies = {step_id: Tally(step.kind.name) for step_id, step in steps.items()}
    for case in _sort(cases(store, runs, list(steps.values())), tallies):
        answer = answered.get((case.run_id, case.step_id))
        if answer is None:
            tallies[case.step_id].exclude(Unusable.NO_SHADOW)
            continue
        tallies[case.step_id].add(case, answer, judge(steps[case.step_id], case, answer))
    return _store(store, workflow, model, SHADOW, chosen, len(runs), tallies)


def _runs(store: RunStore, workflow: Workflow, chosen: Selection) -> list[Run]:
    """Succeeded runs, never dry runs (they are consumed by nothing)."""
    return recorded_runs(
        store.engine, workflow.name, statuses=[RunStatus.SUCCEEDED], since=chosen.since, limit=chosen.limit,
        dry_runs=False,
    )  # fmt: skip


def _only_model(models: list[str], workflow: str) -> str:
    if len(models) == 1:
        return models[0]
    if not models:
        raise UsageError(
            f"workflow '{workflow}' has no shadow answers yet; add `shadow: {{model: CANDIDATE}}` to it and let "
            "the daemon run, or ask the candidate now: gristmill eval WORKFLOW --model CANDIDATE"
        )
    raise UsageError(f"workflow '{workflow}' has shadow answers of {', '.join(models)}; choose one with --model")


def _sort(found: Iterable[Case | Excluded], tallies: dict[str, Tally]) -> list[Case]:
    """The cases to compare; every excluded one counted as not comparable, with its reason."""
    todo: list[Case] = []
    for item in found:
        if isinstance(item, Excluded):
            tallies[item.step_id].exclude(item.why)
        else:
            todo.append(item)
    return todo


def _store(
    store: RunStore,
    workflow: Workflow,
    model: str,
    source: str,
    chosen: Selection,
    seen: int,
    tallies: dict[str, Tally],
) -> EvalRecord:
    steps = {step_id: tally.figures() for step_id, tally in tallies.items()}
    return EvalStore(store.engine).add(
        workflow.name, model, source, since=chosen.since, run_limit=chosen.limit, runs_seen=seen,
        agreement=overall(steps), figures={"steps": steps},
    )  # fmt: skip

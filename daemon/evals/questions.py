"""Which recorded calls of a step asked its question, and the cases an eval or an export is made of."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from daemon.domain import ModelCall, Run
from daemon.evals.values import Case, Excluded, Timing, Unusable
from daemon.store import RunStore
from daemon.store.corrections import Correction, CorrectionStore
from daemon.workflow import Step


def question(calls: list[ModelCall]) -> list[ModelCall]:
    """The calls that asked a step's final question: the question, and its re-ask when there was one.

    A long input's partial summaries and a cut prompt's first plan come before the final question,
    so it is the last call that got an answer, or the one before it when that last call is the
    step's one re-ask (the question's messages, the answer, and a request to answer again).
    """
    answered = [call for call in calls if call.error is None]
    if not answered:
        return []
    if len(answered) > 1 and _reasks(answered[-1], answered[-2]):
        return answered[-2:]
    return answered[-1:]


def _reasks(call: ModelCall, earlier: ModelCall) -> bool:
    n = len(earlier.messages)
    return (
        len(call.messages) == n + 2
        and call.messages[:n] == earlier.messages
        and call.messages[n]["role"] == "assistant"
    )


def unusable(messages: list[dict[str, Any]]) -> Unusable | None:
    """Why recorded messages cannot be sent again: kept as digests, or carrying images; None when they can."""
    for message in messages:
        if message.get("images"):
            return Unusable.IMAGES
        if not isinstance(message.get("content"), str):
            return Unusable.METADATA
    return None


def case_of(run: Run, step_id: str, calls: list[ModelCall], correction: Correction | None) -> Case | Excluded:
    """The run's step as a case to ask again, or why it cannot be one."""
    output = correction.output if correction is not None else run.outputs.get(step_id)
    if not isinstance(output, dict):
        return Excluded(run.id, step_id, Unusable.NO_OUTPUT)
    asked = question([call for call in calls if call.step_id == step_id])
    if not asked:
        return Excluded(run.id, step_id, Unusable.NO_CALL)
    why = unusable(asked[0].messages)
    if why is not None:
        return Excluded(run.id, step_id, why)
    first = asked[0]
    return Case(
        run_id=run.id, step_id=step_id, messages=first.messages, options=dict(first.options or {}),
        model=first.model, reference=dict(output), corrected=correction is not None, timing=Timing.of(asked),
    )  # fmt: skip  # (the fields read as one record)


def cases(store: RunStore, runs: Iterable[Run], steps: list[Step]) -> Iterator[Case | Excluded]:
    """Each run's `steps` as cases, the reference being the latest correction where there is one."""
    chosen = list(runs)
    # By workflow, not by a list of ids: an eval may read thousands of runs.
    corrected = CorrectionStore(store.engine).effective(workflow=chosen[0].workflow) if chosen else {}
    for run in chosen:
        calls = store.calls(run.id)
        for step in steps:
            yield case_of(run, step.step_id, calls, corrected.get((run.id, step.step_id)))

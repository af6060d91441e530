"""Asking a candidate model a recorded question, as the step would have asked it, acting on nothing."""

from __future__ import annotations

from typing import Any

from daemon.domain import ModelCall
from daemon.errors import GristmillError, ModelUnavailable
from daemon.evals.values import Answer, Case, Timing
from daemon.llm.ask import Asker
from daemon.llm.base import ModelBackend
from daemon.steps import StepKind


def ask_case(kind: StepKind, spec: Any, backend: ModelBackend, model: str, case: Case) -> Answer:
    """The candidate's answer to `case`: checked by the step kind (with its one re-ask), never recorded as a call.

    An answer the step could not use (after its re-ask), or a refusal, is an invalid answer; a server
    that is away (ModelUnavailable) or lacks the model (ModelMissing is one) stops the caller.
    """
    made: list[ModelCall] = []
    asker = Asker(backend=backend, record=made.append, model=model, options=case.options, step_id=case.step_id)
    try:
        output, invalid = kind.replay(spec, asker, case.messages), None
    except ModelUnavailable:
        raise
    except GristmillError as exc:
        if getattr(exc, "model", None) == model:  # ModelMissing: the candidate is not there
            raise
        output, invalid = None, exc.message
    last = made[-1] if made else None
    return Answer(
        run_id=case.run_id, step_id=case.step_id, model=model, output=output, invalid=invalid,
        timing=Timing.of(made), raw=None if last is None else last.answer, server=getattr(last, "server", None),
    )  # fmt: skip  # (the fields read as one record)

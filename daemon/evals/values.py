"""The typed values of an eval: a recorded question with its reference, a candidate's answer, its cost."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from daemon.domain import ModelCall

NS = 1_000_000_000


@dataclass(frozen=True)
class Timing:
    """What one answer cost: wall time and generated tokens over the calls it took (a re-ask makes two)."""

    calls: int
    wall_ms: float | None
    completion_tokens: int | None
    eval_ns: int | None  # the server's own time generating them, when it says
    prompt_tokens: int | None = None
    total_ns: int | None = None

    @classmethod
    def of(cls, calls: Iterable[ModelCall]) -> Timing:
        """The sums over `calls` (a sum is None when no call reported that figure)."""
        made = list(calls)
        return cls(
            calls=len(made),
            wall_ms=_sum(c.wall_ms for c in made),
            completion_tokens=_sum(c.completion_tokens for c in made),
            eval_ns=_sum(c.eval_duration_ns for c in made),
            prompt_tokens=_sum(c.prompt_tokens for c in made),
            total_ns=_sum(c.total_duration_ns for c in made),
        )


def _sum(values: Iterable[float | int | None]) -> Any:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


class Unusable(StrEnum):
    """Why a recorded run's step cannot be asked again (not comparable, or not an example)."""

    METADATA = "record: metadata (the prompt is kept as a digest)"
    IMAGES = "an image document (images are not kept in the record)"
    NO_CALL = "no recorded model call"
    NO_OUTPUT = "no output of this step"
    NO_ANSWER = "no label or answer (review)"
    NO_SHADOW = "no shadow answer"


@dataclass(frozen=True)
class Case:
    """One step of one recorded run: the question as it was asked, and the reference to compare with."""

    run_id: int
    step_id: str
    messages: list[dict[str, Any]]  # the recorded question (system?, user)
    options: dict[str, Any]  # the model options it was sent with
    model: str  # the model that answered it
    reference: dict[str, Any]  # the correction's output when corrected, else the recorded output
    corrected: bool
    timing: Timing  # the recorded answer's cost (the question and its re-ask)


@dataclass(frozen=True)
class Excluded:
    """One step of one recorded run that cannot be used, and why."""

    run_id: int
    step_id: str
    why: Unusable


@dataclass(frozen=True)
class Answer:
    """A candidate model's answer to a case: the output as the step would take it, or why it was unusable."""

    run_id: int
    step_id: str
    model: str
    output: dict[str, Any] | None
    invalid: str | None
    timing: Timing
    raw: str | None = None  # the last answer as the model wrote it
    server: str | None = None

"""A workflow's steps as typed models: an optional id and the spec under its registered kind's key.

Each registered step kind gets its own model (`{id, <kind>: Spec}`), built once, so an error in a
spec is reported at its key (`steps[1].classify.labels`) with the line the loader knows.
"""

from __future__ import annotations

import difflib
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, ValidationInfo, create_model, field_validator

from daemon.workflow.fields import STEP_ID_PATTERN, StrictModel, problem

if TYPE_CHECKING:
    from daemon.steps import StepKind


class Step(StrictModel):
    """One step: use `kind`, `spec` and `step_id`; each registered kind has its own model."""

    step_kind: ClassVar[StepKind]
    id: str | None = None
    spec: Any = None

    @field_validator("id")
    @classmethod
    def _usable_id(cls, value: str | None) -> str | None:
        if value is not None and not STEP_ID_PATTERN.match(value):
            raise problem(
                "step_id",
                "'{id}' is not a usable step id; templates need lowercase letters, "
                "digits and _, starting with a letter",
                id=value,
            )
        return value

    @property
    def kind(self) -> StepKind:
        """The registered kind that runs this step."""
        return self.step_kind

    @property
    def step_id(self) -> str:
        """The id later steps and templates use: the given id, else the kind's name."""
        return self.id or self.step_kind.name


@cache
def step_model(kind: StepKind) -> type[Step]:
    """The model of `{id, <kind.name>: kind.Spec}`, built once per registered kind."""
    model = create_model(f"{type(kind).__name__}Step", __base__=Step, spec=(kind.Spec, Field(alias=kind.name)))
    model.step_kind = kind
    return model


def validate_step(data: Any, info: ValidationInfo) -> Step:
    """The step a workflow file declares: a mapping with `id` (optional) and exactly one kind key."""
    from daemon.plugins import registry

    if isinstance(data, Step):
        return data
    kinds = registry().steps
    choices = ", ".join(kinds)
    if not isinstance(data, dict):
        raise problem(
            "step",
            "a step is a mapping with one kind key ({choices}), such as summarise: {max_words: 80}",
            choices=choices,
        )
    found = [key for key in data if key in kinds]
    name = f"step '{data['id']}'" if isinstance(data.get("id"), str) else "this step"
    if len(found) > 1:
        raise problem(
            "step",
            "{name} has several kinds ({kinds}); a step does one thing, so split it",
            name=name,
            kinds=", ".join(found),
        )
    if not found:
        unknown = [key for key in data if key != "id"]
        if unknown:
            near = difflib.get_close_matches(str(unknown[0]), list(kinds), n=1)
            hint = f"did you mean '{near[0]}'?" if near else f"the kinds are {choices}"
            raise problem("step", "'{key}' is not a step kind; {hint}", (unknown[0],), key=str(unknown[0]), hint=hint)
        raise problem("step", "{name} has no kind; give it exactly one of {choices}", name=name, choices=choices)
    return step_model(kinds[found[0]]).model_validate(data, context=info.context)

"""The `summarise` step: a summary of the input in at most `max_words` words (map-reduce when long)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, model_validator

from daemon.engine import longinput
from daemon.steps.base import StepContext, StepKind, StepResult
from daemon.workflow.fields import StrictModel, TemplateStr
from daemon.workflow.templates import render


class SummariseSpec(StrictModel):
    """Summarise the input in at most `max_words` words."""

    max_words: int = Field(120, gt=0)
    instructions: TemplateStr | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, data: Any) -> Any:
        return {} if data is None else data  # `- summarise:` alone takes the defaults


def instructions(spec: Any, ctx: StepContext) -> str | None:
    """A spec's `instructions` template, rendered with the run's scope."""
    return render(spec.instructions, ctx.scope) if spec.instructions else None


def with_split(output: dict[str, Any], split: dict[str, Any] | None) -> dict[str, Any]:
    """The output, with how the input was split when it was."""
    return output | {"split": split} if split else output


class Summarise(StepKind):
    name = "summarise"
    Spec = SummariseSpec
    calls_model = True
    quotes_document = True

    def run(self, spec: SummariseSpec, ctx: StepContext) -> StepResult:
        text, split = longinput.summary_of(ctx.ask, ctx.document(), ctx.images, spec.max_words, instructions(spec, ctx))
        return StepResult(with_split({"text": text}, split), split=split)

    def training_answer(self, spec: SummariseSpec, output: Mapping[str, Any]) -> str | None:
        return output.get("text") or None

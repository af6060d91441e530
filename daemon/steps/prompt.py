"""The `prompt` step: a free instruction to the model, answered as text or as JSON matching a schema."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import Field, model_validator

from daemon.engine import longinput
from daemon.llm import images as vision
from daemon.llm.answers import check_schema
from daemon.llm.messages import Messages, chat
from daemon.steps.agreement import public
from daemon.steps.base import StepContext, StepKind, StepResult
from daemon.workflow.fields import JsonSchema, StrictModel, TemplateStr
from daemon.workflow.templates import render


class PromptSpec(StrictModel):
    """A free instruction to the model, answered as text or as JSON matching `schema`."""

    instruction: TemplateStr
    schema_: JsonSchema | None = Field(None, alias="schema")  # checked against its metaschema at load

    @model_validator(mode="before")
    @classmethod
    def _bare_instruction(cls, data: Any) -> Any:
        return {"instruction": data} if isinstance(data, str) else data


def request(instruction: str, document: str | None, schema: dict[str, Any] | None) -> Messages:
    """A free instruction, on the document when there is one, with a JSON schema when given."""
    task = instruction.strip()
    if schema is not None:
        task += f"\n\nAnswer with only a JSON object matching this JSON schema:\n{json.dumps(schema)}"
    return chat(task, document)


class Prompt(StepKind):
    name = "prompt"
    Spec = PromptSpec
    calls_model = True
    quotes_document = True

    def run(self, spec: PromptSpec, ctx: StepContext) -> StepResult:
        document = vision.IMAGE_DOCUMENT if ctx.images else ctx.text
        messages = request(render(spec.instruction, ctx.scope), document, spec.schema_)
        if ctx.images:
            messages = vision.attach(messages, ctx.images)
        schema = spec.schema_
        if schema is None:
            return StepResult({"text": longinput.guarded(ctx.ask, lambda a: a.text(messages), replan=False)})
        # The whole document goes in: a cut prompt fails the step rather than being re-planned. The answer
        # must match the schema in full (nested objects, required keys, enums); else one re-ask names where.
        answer = longinput.guarded(
            ctx.ask, lambda a: a.json(messages, schema, lambda obj: check_schema(obj, schema)), replan=False
        )
        return StepResult(answer)

    def training_answer(self, spec: PromptSpec, output: Mapping[str, Any]) -> str | None:
        if spec.schema_ is None:
            return output.get("text") or None
        return json.dumps(public(output), ensure_ascii=False)

"""The `extract` step: typed fields out of the input, asked for as JSON matching a schema."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator, field_validator

from daemon.engine import longinput
from daemon.llm.answers import check_fields
from daemon.llm.ask import Asker
from daemon.llm.messages import Messages, chat
from daemon.steps.agreement import public, same
from daemon.steps.base import Comparison, StepContext, StepKind, StepResult
from daemon.steps.summarise import instructions
from daemon.workflow.fields import FIELD_NAME_PATTERN, StrictModel, TemplateStr, names_to_dict, problem

TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "number": {"type": "number"},
    "integer": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "list": {"type": "array", "items": {"type": "string"}},
}


class ExtractSpec(StrictModel):
    """Pull typed fields out of the input; a field's value is a type name or a description."""

    fields: Annotated[dict[str, str], BeforeValidator(names_to_dict)]
    instructions: TemplateStr | None = None

    @field_validator("fields")
    @classmethod
    def _clean_fields(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise problem("fields", "give at least one field")
        for name in value:
            if not FIELD_NAME_PATTERN.match(name):
                raise problem(
                    "fields",
                    "'{name}' is not a field name; use lowercase letters, digits and _, not starting with a digit",
                    (name,),
                    name=name,
                )
        return {name: _type_or_description(text) for name, text in value.items()}

    def json_schema(self) -> dict[str, Any]:
        """A JSON schema for an object with every field present and each value nullable."""
        properties = {}
        for name, text in self.fields.items():
            shape = dict(TYPES.get(text, TYPES["string"]))
            shape["type"] = [shape["type"], "null"]
            if text not in TYPES:
                shape["description"] = text
            properties[name] = shape
        return {
            "type": "object",
            "properties": properties,
            "required": list(self.fields),
            "additionalProperties": False,
        }


def _type_or_description(text: str) -> str:
    folded = text.strip().lower()
    if folded in TYPES:
        return folded
    return text.strip() or "string"


def request(document: str, schema: dict[str, Any], extra: str | None = None) -> Messages:
    """Ask for the fields of `schema` as one JSON object, null where the document has none."""
    task = (
        "Extract the following fields from the document below. Answer with only a JSON object "
        "matching this JSON schema; use null for a field the document does not contain:\n"
        f"{json.dumps(schema, indent=1)}"
    )
    return chat(task, document, extra)


class Extract(StepKind):
    name = "extract"
    Spec = ExtractSpec
    calls_model = True
    quotes_document = True
    comparable = True

    def run(self, spec: ExtractSpec, ctx: StepContext) -> StepResult:
        schema, extra = spec.json_schema(), instructions(spec, ctx)
        fields, split = longinput.ask_about(
            ctx.ask.deciding(),
            ctx.document(),
            ctx.images,
            lambda doc: request(doc, schema, extra),
            256 + 48 * len(schema["properties"]),
            lambda asker, messages: asker.json(messages, schema, lambda obj: check_fields(obj, schema)),
        )  # fmt: skip  (the arguments read as one call)
        # How the input was split is kept beside the fields (outputs["_split"]), never among them.
        return StepResult(fields, split=split)

    def replay(self, spec: ExtractSpec, ask: Asker, messages: Messages) -> dict[str, Any]:
        schema = spec.json_schema()
        return ask.deciding().json(messages, schema, lambda obj: check_fields(obj, schema))

    def compare(self, spec: ExtractSpec, reference: Mapping[str, Any], answer: Mapping[str, Any]) -> Comparison:
        fields = {name: same(reference.get(name), answer.get(name)) for name in spec.fields}
        return Comparison(all(fields.values()), fields=fields)

    def training_answer(self, spec: ExtractSpec, output: Mapping[str, Any]) -> str | None:
        return json.dumps({name: public(output).get(name) for name in spec.fields}, ensure_ascii=False)

"""Step kinds, their specs and the actions a route can take."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, BeforeValidator, Discriminator, Field, Tag, field_validator, model_validator

from daemon.workflow.fields import (
    FIELD_NAME_PATTERN,
    NAME_PATTERN,
    STEP_ID_PATTERN,
    StrictModel,
    TemplateSource,
    TemplateStr,
    problem,
)


class StepKind(StrEnum):
    SUMMARISE = "summarise"
    CLASSIFY = "classify"
    EXTRACT = "extract"
    ROUTE = "route"
    WRITE = "write"
    PROMPT = "prompt"


# ---------------------------------------------------------------- actions

ActionKind = Literal["move_to", "copy_to", "run", "webhook", "keep"]
ACTION_KEYS: tuple[str, ...] = ("move_to", "copy_to", "run", "webhook", "keep")


class Action(StrictModel):
    """One thing done with the input file; exactly one key, or the bare word `keep`."""

    move_to: TemplateStr | None = None
    copy_to: TemplateStr | None = None
    run: str | None = None
    webhook: str | None = None
    keep: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if data == "keep":
            return {"keep": True}
        if isinstance(data, str):
            raise problem("action", "'{word}' is not an action; write keep or a mapping such as "
                          "{move_to: ~/Folder}", word=data)  # fmt: skip
        return data

    @field_validator("run")
    @classmethod
    def _workflow_name(cls, value: str | None) -> str | None:
        if value is not None and not NAME_PATTERN.match(value):
            raise problem("run", "'{name}' is not a workflow name ([a-z0-9-]+)", name=value)
        return value

    @field_validator("webhook")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://\S+$", value):
            raise problem("webhook", "'{url}' is not an http:// or https:// address", url=value)
        if value is not None and ("{{" in value or "{%" in value):
            # Nothing a document or a model says may become a URL: webhook targets are fixed.
            raise problem("webhook", "'{url}' uses a template; a webhook address is fixed text, so no "
                          "document or model answer can change where data is sent", url=value)  # fmt: skip
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Action:
        given = [key for key in ACTION_KEYS if getattr(self, key) is not None]
        if len(given) != 1:
            raise problem("action", "an action needs exactly one of {keys}, not {count}",
                          keys=", ".join(ACTION_KEYS), count=len(given))  # fmt: skip
        if self.keep is False:
            raise problem("action", "keep: false does nothing; write keep: true or another action", ("keep",))
        return self

    @property
    def kind(self) -> ActionKind:
        """Which action this is."""
        given = next(key for key in ACTION_KEYS if getattr(self, key) is not None)
        return given  # type: ignore[return-value]

    @property
    def target(self) -> str | None:
        """The folder template, workflow name or URL; None for keep."""
        return None if self.kind == "keep" else getattr(self, self.kind)


KEEP = Action(keep=True)


# ---------------------------------------------------------------- step specs

EXTRACT_TYPES: dict[str, dict[str, Any]] = {
    "string": {"type": "string"},
    "number": {"type": "number"},
    "integer": {"type": "integer"},
    "boolean": {"type": "boolean"},
    "date": {"type": "string", "format": "date"},
    "list": {"type": "array", "items": {"type": "string"}},
}


def _names_to_dict(value: Any) -> Any:
    """A list of names means each name with an empty value; a name with no value gets ""."""
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise problem("names", "each item of this list must be a name")
        seen = [item for i, item in enumerate(value) if item in value[:i]]
        if seen:
            raise problem("names", "'{name}' is listed twice", name=seen[0])
        return {item: "" for item in value}
    if isinstance(value, dict):
        return {key: "" if text is None else text for key, text in value.items()}
    return value


class SummariseSpec(StrictModel):
    """Summarise the input in at most `max_words` words."""

    max_words: int = Field(120, gt=0)
    instructions: TemplateStr | None = None


class ClassifySpec(StrictModel):
    """Pick one label from a closed set; each label's description goes into the prompt."""

    labels: Annotated[dict[str, str], BeforeValidator(_names_to_dict)]
    min_confidence: float = Field(0.0, ge=0, le=1)
    instructions: TemplateStr | None = None

    @field_validator("labels")
    @classmethod
    def _clean_labels(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise problem("labels", "give at least one label")
        cleaned: dict[str, str] = {}
        folded: dict[str, str] = {}
        for raw, text in value.items():
            label = raw.strip()
            if not label:
                raise problem("labels", "a label name is empty")
            if label.casefold() in folded:
                raise problem("labels", "the labels '{a}' and '{b}' differ only in case or spaces; keep one",
                              (raw,), a=folded[label.casefold()], b=raw)  # fmt: skip
            folded[label.casefold()], cleaned[label] = raw, text.strip()
        return cleaned


class ExtractSpec(StrictModel):
    """Pull typed fields out of the input; a field's value is a type name or a description."""

    fields: Annotated[dict[str, str], BeforeValidator(_names_to_dict)]
    instructions: TemplateStr | None = None

    @field_validator("fields")
    @classmethod
    def _clean_fields(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise problem("fields", "give at least one field")
        for name in value:
            if not FIELD_NAME_PATTERN.match(name):
                raise problem("fields", "'{name}' is not a field name; use lowercase letters, digits and _, "
                              "not starting with a digit", (name,), name=name)  # fmt: skip
        return {name: _type_or_description(text) for name, text in value.items()}

    def json_schema(self) -> dict[str, Any]:
        """A JSON schema for an object with every field present and each value nullable."""
        properties = {}
        for name, text in self.fields.items():
            shape = dict(EXTRACT_TYPES.get(text, EXTRACT_TYPES["string"]))
            shape["type"] = [shape["type"], "null"]
            if text not in EXTRACT_TYPES:
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
    if folded in EXTRACT_TYPES:
        return folded
    return text.strip() or "string"


class RouteSpec(StrictModel):
    """Choose an action by the label of the classify step `by`; without `by`, always `default`."""

    by: str | None = None
    routes: dict[str, Action] = {}
    default: Action = KEEP
    review: Action | None = None

    def actions(self) -> list[tuple[tuple[str, ...], Action]]:
        """Every action with its key path inside the spec."""
        found = [(("routes", label), action) for label, action in self.routes.items()]
        found.append((("default",), self.default))
        if self.review is not None:
            found.append((("review",), self.review))
        return found


class WriteSpec(StrictModel):
    """Render `content` into the file at `path`."""

    path: TemplateStr
    content: TemplateSource


class PromptSpec(StrictModel):
    """A free instruction to the model, answered as text or as JSON matching `schema`."""

    instruction: TemplateStr
    schema_: dict[str, Any] | None = Field(None, alias="schema")

    @model_validator(mode="before")
    @classmethod
    def _bare_instruction(cls, data: Any) -> Any:
        return {"instruction": data} if isinstance(data, str) else data


# ---------------------------------------------------------------- steps


class _Step(StrictModel):
    """Shared by every step kind: an optional id and the spec under the kind's key."""

    KIND: ClassVar[StepKind]
    id: str | None = None

    @field_validator("id")
    @classmethod
    def _usable_id(cls, value: str | None) -> str | None:
        if value is not None and not STEP_ID_PATTERN.match(value):
            raise problem("step_id", "'{id}' is not a usable step id; templates need lowercase letters, "
                          "digits and _, starting with a letter", id=value)  # fmt: skip
        return value

    @property
    def kind(self) -> StepKind:
        """The step's kind."""
        return self.KIND

    @property
    def spec(self) -> Any:
        """The spec under the kind's key."""
        return getattr(self, self.KIND.value)

    @property
    def step_id(self) -> str:
        """The id later steps and templates use: the given id, else the kind's name."""
        return self.id or self.KIND.value


class SummariseStep(_Step):
    KIND: ClassVar[StepKind] = StepKind.SUMMARISE
    summarise: Annotated[SummariseSpec, BeforeValidator(lambda v: {} if v is None else v)]


class ClassifyStep(_Step):
    KIND: ClassVar[StepKind] = StepKind.CLASSIFY
    classify: ClassifySpec


class ExtractStep(_Step):
    KIND: ClassVar[StepKind] = StepKind.EXTRACT
    extract: ExtractSpec


class RouteStep(_Step):
    KIND: ClassVar[StepKind] = StepKind.ROUTE
    route: RouteSpec


class WriteStep(_Step):
    KIND: ClassVar[StepKind] = StepKind.WRITE
    write: WriteSpec


class PromptStep(_Step):
    KIND: ClassVar[StepKind] = StepKind.PROMPT
    prompt: PromptSpec


STEP_CLASSES: dict[StepKind, type[_Step]] = {
    cls.KIND: cls for cls in (SummariseStep, ClassifyStep, ExtractStep, RouteStep, WriteStep, PromptStep)
}
STEP_TAGS = frozenset(cls.__name__ for cls in STEP_CLASSES.values())


def _step_tag(data: Any) -> str | None:
    if isinstance(data, BaseModel):
        return type(data).__name__
    kinds = [kind for kind in StepKind if isinstance(data, dict) and kind.value in data]
    return STEP_CLASSES[kinds[0]].__name__ if len(kinds) == 1 else None


def _check_step_shape(data: Any) -> Any:
    """Name the step and the fix when it has no kind or several; the discriminator cannot."""
    if isinstance(data, BaseModel):
        return data
    choices = ", ".join(StepKind)
    if not isinstance(data, dict):
        raise problem("step", "a step is a mapping with one kind key ({choices}), such as "
                      "summarise: {max_words: 80}", choices=choices)  # fmt: skip
    kinds = [kind.value for kind in StepKind if kind.value in data]
    name = f"step '{data['id']}'" if isinstance(data.get("id"), str) else "this step"
    if not kinds:
        raise problem("step", "{name} has no kind; give it exactly one of {choices}",
                      name=name, choices=choices)  # fmt: skip
    if len(kinds) > 1:
        raise problem("step", "{name} has several kinds ({kinds}); a step does one thing, so split it",
                      name=name, kinds=", ".join(kinds))  # fmt: skip
    return data


Step = Annotated[
    Union[  # noqa: UP007 - a Union reads better with the Tag annotations
        Annotated[SummariseStep, Tag("SummariseStep")],
        Annotated[ClassifyStep, Tag("ClassifyStep")],
        Annotated[ExtractStep, Tag("ExtractStep")],
        Annotated[RouteStep, Tag("RouteStep")],
        Annotated[WriteStep, Tag("WriteStep")],
        Annotated[PromptStep, Tag("PromptStep")],
    ],
    Discriminator(_step_tag),
    BeforeValidator(_check_step_shape),
]

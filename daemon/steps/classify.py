"""The `classify` step: one label of a closed set, asked for with a JSON schema (an enum of the labels)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator

from daemon.engine import longinput
from daemon.errors import BadAnswer
from daemon.llm.answers import match_label, parse_confidence
from daemon.llm.ask import Asker
from daemon.llm.messages import Messages, chat
from daemon.steps.base import Comparison, StepContext, StepKind, StepResult
from daemon.steps.summarise import instructions, with_split
from daemon.workflow.fields import StrictModel, TemplateStr, names_to_dict, problem

REPLY_TOKENS = 64


class ClassifySpec(StrictModel):
    """Pick one label from a closed set; each label's description goes into the prompt."""

    labels: Annotated[dict[str, str], BeforeValidator(names_to_dict)]
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
                raise problem(
                    "labels",
                    "the labels '{a}' and '{b}' differ only in case or spaces; keep one",
                    (raw,),
                    a=folded[label.casefold()],
                    b=raw,
                )
            folded[label.casefold()], cleaned[label] = raw, text.strip()
        return cleaned


def schema(labels: list[str]) -> dict[str, Any]:
    """JSON schema of a classification answer: one label of the closed set and a confidence."""
    return {
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": labels},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["label", "confidence"],
    }


def request(document: str, labels: dict[str, str], extra: str | None = None) -> Messages:
    """Ask for exactly one label of `labels` with a confidence."""
    lines = "\n".join(f"- {name}: {desc}" if desc else f"- {name}" for name, desc in labels.items())
    task = (
        "Classify the document below into exactly one of these labels:\n"
        f"{lines}\n\nAnswer with only a JSON object like "
        f'{{"label": "{next(iter(labels))}", "confidence": 0.8}}, where label is one of '
        f"{json.dumps(list(labels))} and confidence (0 to 1) says how sure you are."
    )
    return chat(task, document, extra)


def checked(asker: Asker, messages: Messages, labels: list[str]) -> dict[str, Any]:
    """The model's label and confidence; BadAnswer when it is still unusable after the one re-ask."""

    def check(reply: dict[str, Any]) -> dict[str, Any]:
        label = match_label(reply.get("label"), labels)
        if label is None:
            raise BadAnswer(f"the label {reply.get('label')!r} is not one of {', '.join(labels)}")
        return {"label": label, "confidence": parse_confidence(reply.get("confidence"))}

    return asker.json(messages, schema(labels), check)


def answer(asker: Asker, messages: Messages, labels: list[str]) -> dict[str, Any]:
    """The model's label (or no label with the reason) for a classification request."""
    try:
        return checked(asker, messages, labels)
    except BadAnswer as exc:
        return {"label": None, "confidence": None, "reason": exc.message}


class Classify(StepKind):
    name = "classify"
    Spec = ClassifySpec
    calls_model = True
    comparable = True

    def run(self, spec: ClassifySpec, ctx: StepContext) -> StepResult:
        labels, extra = list(spec.labels), instructions(spec, ctx)
        result, split = longinput.ask_about(
            ctx.ask.deciding(),
            ctx.document(),
            ctx.images,
            lambda doc: request(doc, dict(spec.labels), extra),
            REPLY_TOKENS,
            lambda asker, messages: answer(asker, messages, labels),
        )  # fmt: skip  (the arguments read as one call)
        return StepResult(with_split(_judged(result, spec.min_confidence), split), split=split)

    def labels(self, spec: ClassifySpec) -> list[str]:
        return list(spec.labels)

    def replay(self, spec: ClassifySpec, ask: Asker, messages: Messages) -> dict[str, Any]:
        return _judged(checked(ask.deciding(), messages, list(spec.labels)), spec.min_confidence)

    def compare(self, spec: ClassifySpec, reference: Mapping[str, Any], answer: Mapping[str, Any]) -> Comparison:
        pair = (reference.get("label"), answer.get("label"))
        return Comparison(pair[0] == pair[1], label=pair)

    def training_answer(self, spec: ClassifySpec, output: Mapping[str, Any]) -> str | None:
        # The JSON the step asks for; an answer without a label teaches nothing.
        if output.get("label") is None:
            return None
        return json.dumps({"label": output["label"], "confidence": output.get("confidence")}, ensure_ascii=False)


def _judged(result: dict[str, Any], min_confidence: float) -> dict[str, Any]:
    """An answer below `min_confidence` counts as no label, keeping the guess and the reason."""
    confidence = result["confidence"]
    if result["label"] is None or not min_confidence:
        return result
    if confidence is None or confidence < min_confidence:
        reason = f"confidence {confidence} is below {min_confidence} for label {result['label']}"
        return {"label": None, "confidence": confidence, "guess": result["label"], "reason": reason}
    return result

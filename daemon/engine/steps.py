"""What each step kind does, given the run's context. Model and file access are injected."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.engine import longinput, prompts
from daemon.engine.actions import Actions
from daemon.errors import BadAnswer, GristmillError
from daemon.extract import vision
from daemon.files.paths import confine
from daemon.llm.answers import check_fields, match_label, parse_confidence
from daemon.llm.ask import Asker
from daemon.workflow import StepKind, Workflow
from daemon.workflow.templates import render


@dataclass
class StepContext:
    """Everything a step may read or touch during one run."""

    workflow: Workflow
    scope: dict[str, Any]  # what templates see; each finished step's output is added by its id
    document: str | None  # the text the model reads
    asker: Callable[[str], Asker]  # an asker for a step id
    actions: Actions
    file_path: Path | None  # where the input file is now (a move changes it)
    images: tuple[bytes, ...] = ()  # an image document, for a vision model
    splits: dict[str, Any] = field(default_factory=dict)  # how each step split the input, by step id


def summarise(step: Any, ctx: StepContext) -> dict[str, Any]:
    spec = step.summarise
    asker = ctx.asker(step.step_id)
    text, split = longinput.summary_of(asker, _text(ctx, step), ctx.images, spec.max_words, _instructions(spec, ctx))
    return {"text": text} | _split(ctx, step, split)


def classify(step: Any, ctx: StepContext) -> dict[str, Any]:
    spec = step.classify
    labels = list(spec.labels)
    asker = _deciding(ctx, step)
    instructions = _instructions(spec, ctx)

    def check(answer: dict[str, Any]) -> dict[str, Any]:
        label = match_label(answer.get("label"), labels)
        if label is None:
            raise BadAnswer(f"the label {answer.get('label')!r} is not one of {', '.join(labels)}")
        return {"label": label, "confidence": parse_confidence(answer.get("confidence"))}

    def ask(messages: list[dict[str, Any]]) -> dict[str, Any]:
        try:
            return asker.json(messages, prompts.classify_schema(labels), check)
        except BadAnswer as exc:
            return {"label": None, "confidence": None, "reason": exc.message}

    build = lambda doc: prompts.classify(doc, dict(spec.labels), instructions)  # noqa: E731
    result, split = longinput.ask_about(asker, _text(ctx, step), ctx.images, build, 64, ask)
    extra = _split(ctx, step, split)
    if result["label"] is None:
        return result | extra
    confidence = result["confidence"]
    if spec.min_confidence and (confidence is None or confidence < spec.min_confidence):
        reason = f"confidence {confidence} is below {spec.min_confidence} for label {result['label']}"
        return {"label": None, "confidence": confidence, "guess": result["label"], "reason": reason} | extra
    return result | extra


def extract(step: Any, ctx: StepContext) -> dict[str, Any]:
    spec = step.extract
    schema = spec.json_schema()
    asker = _deciding(ctx, step)
    instructions = _instructions(spec, ctx)
    answer_tokens = 256 + 48 * len(schema.get("properties", {}))
    build = lambda doc: prompts.extract(doc, schema, instructions)  # noqa: E731
    ask = lambda messages: asker.json(messages, schema, lambda obj: check_fields(obj, schema))  # noqa: E731
    fields, split = longinput.ask_about(asker, _text(ctx, step), ctx.images, build, answer_tokens, ask)
    _split(ctx, step, split)  # recorded beside the fields (outputs["_split"]), never among them
    return fields


def prompt(step: Any, ctx: StepContext) -> dict[str, Any]:
    spec = step.prompt
    instruction = render(spec.instruction, ctx.scope)
    schema = spec.schema_
    messages = prompts.prompt(instruction, vision.IMAGE_DOCUMENT if ctx.images else ctx.document, schema)
    messages = vision.attach(messages, ctx.images) if ctx.images else messages
    asker = ctx.asker(step.step_id)
    if schema is None:
        return {"text": longinput.guarded(asker, lambda: asker.text(messages), replan=False)}
    ask = lambda: asker.json(messages, schema, lambda obj: check_fields(obj, schema))  # noqa: E731
    return longinput.guarded(asker, ask, replan=False)


def route(step: Any, ctx: StepContext) -> dict[str, Any]:
    spec = step.route
    decided = ctx.scope.get(spec.by) or {}
    label = decided.get("label")
    if label is not None and label in spec.routes:
        action, why = spec.routes[label], f"label {label}"
    elif spec.review is not None and decided.get("reason"):
        action, why = spec.review, f"review: {decided['reason']}"
    else:
        action, why = spec.default, ("default: " + (decided.get("reason") or f"no route for label {label}"))
    # Only folder templates are rendered, and confined; a workflow name or URL is used as written.
    target = action.target
    if action.kind in ("move_to", "copy_to"):
        target = str(confine(render(action.target or "", ctx.scope), action.target or ""))
    destination = ctx.actions.perform(action.kind, target, ctx)
    return {"action": action.kind, "destination": destination, "label": label, "why": why}


def write(step: Any, ctx: StepContext) -> dict[str, Any]:
    spec = step.write
    path = confine(render(spec.path, ctx.scope), spec.path)
    content = render(spec.content, ctx.scope)
    return {"path": ctx.actions.write(path, content)}


RUNNERS: dict[StepKind, Callable[[Any, StepContext], dict[str, Any]]] = {
    StepKind.SUMMARISE: summarise,
    StepKind.CLASSIFY: classify,
    StepKind.EXTRACT: extract,
    StepKind.PROMPT: prompt,
    StepKind.ROUTE: route,
    StepKind.WRITE: write,
}


def _document(ctx: StepContext, step: Any) -> str:
    if ctx.document is None:
        raise GristmillError(f"step '{step.step_id}' needs a document, but this run has no input")
    return ctx.document


def _text(ctx: StepContext, step: Any) -> str:
    """The document's text; an image document has none (the model gets the image)."""
    return "" if ctx.images else _document(ctx, step)


def _split(ctx: StepContext, step: Any, split: dict[str, Any] | None) -> dict[str, Any]:
    """Note how a step split the input (the runner keeps it under outputs["_split"])."""
    if not split:
        return {}
    ctx.splits[step.step_id] = split
    return {"split": split}


def _deciding(ctx: StepContext, step: Any) -> Asker:
    """An asker for classify/extract: reasoning models answer without thinking unless told to."""
    asker = ctx.asker(step.step_id)
    if asker.think is None:
        asker.think = False
    return asker


def _instructions(spec: Any, ctx: StepContext) -> str | None:
    return render(spec.instructions, ctx.scope) if spec.instructions else None

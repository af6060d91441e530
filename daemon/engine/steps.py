"""What each step kind does, given the run's context. Model and file access are injected."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.engine import longinput, prompts
from daemon.engine.actions import Actions
from daemon.errors import BadAnswer, GristmillError
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


def summarise(step: Any, ctx: StepContext) -> dict[str, Any]:
    spec = step.summarise
    asker = ctx.asker(step.step_id)
    text, split = longinput.summarise(asker, _document(ctx, step), spec.max_words, _instructions(spec, ctx))
    return {"text": text} | ({"split": split} if split else {})


def classify(step: Any, ctx: StepContext) -> dict[str, Any]:
    spec = step.classify
    labels = list(spec.labels)
    asker = _deciding(ctx, step)
    instructions = _instructions(spec, ctx)
    document, split = longinput.fit(
        asker, _document(ctx, step), lambda doc: prompts.classify(doc, dict(spec.labels), instructions), 64
    )
    messages = prompts.classify(document, dict(spec.labels), instructions)

    def check(answer: dict[str, Any]) -> dict[str, Any]:
        label = match_label(answer.get("label"), labels)
        if label is None:
            raise BadAnswer(f"the label {answer.get('label')!r} is not one of {', '.join(labels)}")
        return {"label": label, "confidence": parse_confidence(answer.get("confidence"))}

    extra = {"split": split} if split else {}
    try:
        result = asker.json(messages, prompts.classify_schema(labels), check)
    except BadAnswer as exc:
        return {"label": None, "confidence": None, "reason": exc.message} | extra
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
    document, _split = longinput.fit(
        asker, _document(ctx, step), lambda doc: prompts.extract(doc, schema, instructions), answer_tokens
    )
    messages = prompts.extract(document, schema, instructions)
    return asker.json(messages, schema, lambda obj: check_fields(obj, schema))


def prompt(step: Any, ctx: StepContext) -> dict[str, Any]:
    spec = step.prompt
    instruction = render(spec.instruction, ctx.scope)
    schema = spec.schema_
    messages = prompts.prompt(instruction, ctx.document, schema)
    if schema is None:
        return {"text": ctx.asker(step.step_id).text(messages)}
    return ctx.asker(step.step_id).json(messages, schema, lambda obj: check_fields(obj, schema))


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


def _deciding(ctx: StepContext, step: Any) -> Asker:
    """An asker for classify/extract: reasoning models answer without thinking unless told to."""
    asker = ctx.asker(step.step_id)
    if asker.think is None:
        asker.think = False
    return asker


def _instructions(spec: Any, ctx: StepContext) -> str | None:
    return render(spec.instructions, ctx.scope) if spec.instructions else None

"""`record: metadata`: what is kept of a model call or a run's outputs instead of document text.

The rule: anything that can carry the document's words (prompts, answers, reasoning, summaries,
extracted fields, free prompt answers) becomes `{"sha256": …, "chars": …}`. What the workflow file
declares or the daemon decides is kept: roles, model, options, schema, tokens, durations, and the
outputs of classify, route and write steps (labels, confidences, reasons, actions, destinations,
written paths).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from daemon.domain import ModelCall


def digest(value: Any) -> dict[str, Any]:
    """The sha256 and size of a text (or of any JSON value's compact form)."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
    return {"sha256": hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest(), "chars": len(text)}


def redact_message(message: dict[str, Any]) -> dict[str, Any]:
    """A chat message with its content (and images) replaced by their digests."""
    kept = {"role": message.get("role")}
    if "content" in message:
        kept["content"] = digest(message.get("content") or "")
    if message.get("images"):
        kept["images"] = [digest(image) for image in message["images"]]
    return kept


def redact_call(call: ModelCall) -> ModelCall:
    """A copy of `call` that keeps sizes, hashes and numbers but no document text."""
    return dataclasses.replace(
        call,
        messages=[redact_message(m) for m in call.messages],
        answer=None if call.answer is None else json.dumps(digest(call.answer)),
        thinking=None if call.thinking is None else json.dumps(digest(call.thinking)),
    )


def redact_outputs(outputs: dict[str, Any], text_steps: set[str]) -> dict[str, Any]:
    """Step outputs with each value of the steps in `text_steps` replaced by its digest."""
    return {step: _redact_output(value) if step in text_steps else value for step, value in outputs.items()}


def _redact_output(value: Any) -> Any:
    if not isinstance(value, dict):
        return digest(value)
    return {key: item if item is None or _is_digest(item) else digest(item) for key, item in value.items()}


def _is_digest(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"sha256", "chars"}

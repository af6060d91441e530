"""Structured answers on OpenAI-compatible servers: the strongest way a server accepts, learned once.

Servers differ (PITFALLS "Model servers"): most take `response_format` `json_schema`; some refuse it
and take `json_object`; LM Studio refuses `json_object`; an old server takes neither. Every server
starts at `json_schema` and steps down on the first refusal that names the response format, to
`json_object` with the schema in the prompt, then to a plain prompt with the schema. The step is
logged once per server and kept for the life of the process. Whatever comes back is validated by
the asker as always (vLLM ≥ 0.12 ignores guided decoding silently and answers 200).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from enum import StrEnum
from typing import Any

log = logging.getLogger("gristmill")

# The stand-in's brain follows a schema given after these words (daemon/standin/brain.py).
SCHEMA_PROMPT = "Answer with one JSON object and nothing else. It must match this JSON schema:\n{schema}"
_REFUSAL = re.compile(r"response_format|json_schema|json_object|structured|grammar|schema", re.IGNORECASE)


class Structured(StrEnum):
    """How a JSON answer is asked for, strongest first."""

    JSON_SCHEMA = "json_schema"
    JSON_OBJECT = "json_object"
    PROMPT = "prompt"

    def weaker(self) -> Structured | None:
        """The next way to try after this one was refused; None after the last."""
        order = list(Structured)
        index = order.index(self)
        return order[index + 1] if index + 1 < len(order) else None

    def response_format(self, schema: dict[str, Any]) -> dict[str, Any] | None:
        """The `response_format` field for this way, or None for a plain prompt."""
        if self is Structured.JSON_SCHEMA:
            return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": False}}
        if self is Structured.JSON_OBJECT:
            return {"type": "json_object"}
        return None

    def messages(self, messages: list[dict[str, Any]], schema: dict[str, Any]) -> list[dict[str, Any]]:
        """The conversation, with the schema spelled out as a system message unless the format carries it."""
        if self is Structured.JSON_SCHEMA:
            return messages
        said = {"role": "system", "content": SCHEMA_PROMPT.format(schema=json.dumps(schema))}
        # After the system prompt, before the conversation: its last message stays the question.
        head = [m for m in messages if m.get("role") == "system"]
        return [*head, said, *(m for m in messages if m.get("role") != "system")]


def is_format_refusal(status: int | None, message: str) -> bool:
    """Whether a 400/422 answer refuses the way the answer was asked for (rather than something else)."""
    return status in (400, 422) and bool(_REFUSAL.search(message or ""))


class StructuredWays:
    """What one server accepts; starts at the strongest way, steps down once per refusal, logs each step once."""

    def __init__(self, server: str) -> None:
        self.server = server
        self._lock = threading.Lock()
        self.current = Structured.JSON_SCHEMA

    def refused(self, way: Structured, reason: str) -> Structured | None:
        """`way` was refused: the way to use from now on, or None when nothing weaker is left."""
        with self._lock:
            if self.current is not way:  # another call already stepped down
                return self.current
            weaker = way.weaker()
            if weaker is None:
                return None
            self.current = weaker
        how = "the schema in the prompt"
        if weaker is Structured.JSON_OBJECT:
            how = f"json_object with {how}"
        log.warning("the model server '%s' refuses response_format %s (%s); asking with %s from now on",
                    self.server, way.value, reason, how)  # fmt: skip
        return weaker

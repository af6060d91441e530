"""Asking the model: one call or a call and one re-ask, every call recorded."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from daemon.domain import ModelCall
from daemon.errors import BadAnswer
from daemon.llm.answers import clean_text, parse_json_answer
from daemon.llm.base import ModelBackend

T = TypeVar("T")

REASK = (
    "Your answer could not be used: {problem}. Answer again with only a JSON object that matches "
    "this schema, and nothing else:\n{schema}"
)


@dataclass
class Asker:
    """Asks one model on behalf of one step of one run; `record` stores every call."""

    backend: ModelBackend
    record: Callable[[ModelCall], None]
    model: str
    options: dict[str, Any] = field(default_factory=dict)
    step_id: str | None = None
    think: bool | None = None
    context_tokens: int = 8192  # num_ctx to send for long prompts when the workflow sets none
    prompt_share: float = 1.0  # share of a window's prompt budget plans may use (halved after a cut)
    after: Callable[[ModelCall], None] | None = None  # checks each answered call (e.g. for a cut prompt)

    def text(self, messages: list[dict[str, Any]]) -> str:
        """A free-text answer, reasoning blocks removed."""
        call = self._call(messages, None)
        answer = clean_text(call.answer or "")
        if not answer:
            raise BadAnswer("the model gave an empty answer", raw=call.answer or "")
        return answer

    def json(
        self, messages: list[dict[str, Any]], schema: dict[str, Any], check: Callable[[dict[str, Any]], T]
    ) -> T:
        """A JSON answer constrained by `schema` and accepted by `check`; one re-ask when invalid."""
        call = self._call(messages, schema)
        try:
            return check(parse_json_answer(call.answer or ""))
        except BadAnswer as first:
            problem = first.message
        followup = [
            *messages,
            {"role": "assistant", "content": call.answer or ""},
            {"role": "user", "content": REASK.format(problem=problem, schema=json.dumps(schema))},
        ]
        second = self._call(followup, schema)
        try:
            return check(parse_json_answer(second.answer or ""))
        except BadAnswer as exc:
            raise BadAnswer(
                f"the model's answer was unusable twice ({exc.message})", raw=second.answer or ""
            ) from exc

    def _call(self, messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> ModelCall:
        call = ModelCall(
            model=self.model,
            messages=messages,
            options=dict(self.options),
            format=schema,
            step_id=self.step_id,
        )
        try:
            self.backend.chat(call, think=self.think)
        finally:
            self.record(call)
        if self.after is not None:
            self.after(call)
        return call

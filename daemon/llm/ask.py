"""Asking the model: one call or a call and one re-ask, every call recorded and checked for a cut prompt."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from daemon.domain import ModelCall
from daemon.engine.chunking import messages_tokens
from daemon.errors import AnswerCut, BadAnswer, GristmillError
from daemon.llm.answers import clean_text, parse_json_answer
from daemon.llm.base import ModelBackend
from daemon.llm.calibration import TokenCalibration

T = TypeVar("T")

REASK = (
    "Your answer could not be used: {problem}. Answer again with only a JSON object that matches "
    "this schema, and nothing else:\n{schema}"
)
MORE_ROOM = 1024  # the least answer limit (num_predict, max_tokens) of a re-ask after a cut answer


class PromptCut(GristmillError):
    """The server evaluated a whole context's worth of a prompt: it dropped the rest silently."""

    def __init__(self, step_id: str | None, evaluated: int, window: int, estimated: int) -> None:
        super().__init__(
            f"the model server cut the prompt of step '{step_id}': it read {evaluated} tokens, its whole "
            f"context of {window}, of about {estimated}"
        )
        self.evaluated, self.window, self.estimated = evaluated, window, estimated


@dataclass(frozen=True)
class Asker:
    """Asks one model on behalf of one step of one run; `record` stores every call.

    Immutable: a step that needs other options or a smaller plan makes a changed copy (`with_`).
    """

    backend: ModelBackend
    record: Callable[[ModelCall], None]
    model: str
    options: dict[str, Any] = field(default_factory=dict)
    step_id: str | None = None
    think: bool | None = None
    prompt_share: float = 1.0  # share of a window's prompt budget plans may use (halved after a cut)
    about: str = ""  # who asks, for progress lines in the log: "run 12 (sort-inbox)"
    # What this process learnt of the model's tokenizer from the servers' prompt_eval_count (planners read it).
    calibration: TokenCalibration | None = None

    def with_(self, **changes: Any) -> Asker:
        """A copy with some fields changed; `options` given here are merged into the current ones."""
        if "options" in changes:
            changes["options"] = {**self.options, **changes["options"]}
        return dataclasses.replace(self, **changes)

    def deciding(self) -> Asker:
        """For classify and extract: reasoning models answer directly unless the workflow says otherwise."""
        return self if self.think is not None else self.with_(think=False)

    def text(self, messages: list[dict[str, Any]]) -> str:
        """A free-text answer, reasoning blocks removed."""
        call = self._call(messages, None)
        answer = clean_text(call.answer or "")
        if not answer:
            raise BadAnswer("the model gave an empty answer", raw=call.answer or "")
        return answer

    def json(self, messages: list[dict[str, Any]], schema: dict[str, Any], check: Callable[[dict[str, Any]], T]) -> T:
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
            raise BadAnswer(f"the model's answer was unusable twice ({exc.message})", raw=second.answer or "") from exc

    def context_in_effect(self, options: dict[str, Any]) -> int:
        """The most prompt tokens the server can have evaluated for a call sent with `options`.

        The backend says: for Ollama the num_ctx it sends (the workflow's, else its one per model),
        capped by the model's own context; for other servers the model's context as they list it.
        """
        return self.backend.window(self.model, options)

    def _call(self, messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> ModelCall:
        """One call; an answer cut at its token limit is asked once more with more room."""
        call = self._send(messages, schema, self.options)
        if call.done_reason != "length":
            return call
        limit = int(self.options.get("num_predict") or 0)
        room = max(2 * limit, 2 * (call.completion_tokens or 0), MORE_ROOM)
        again = self._send(messages, schema, {**self.options, "num_predict": room})
        if again.done_reason == "length":
            raise AnswerCut(
                f"the model's answer to step '{self.step_id}' was cut at its length limit twice, the second time "
                f"with room for {room} tokens; set options.num_predict higher, or options.num_ctx when the "
                "context is full"
            )
        return again

    def _send(
        self, messages: list[dict[str, Any]], schema: dict[str, Any] | None, options: dict[str, Any]
    ) -> ModelCall:
        call = ModelCall(model=self.model, messages=messages, options=dict(options), format=schema,
                         step_id=self.step_id)  # fmt: skip
        try:
            self.backend.chat(call, think=self.think)
        finally:
            self.record(call)
        if call.prompt_tokens:  # unknown: old servers omit it on cached prompts
            # The context as sent (num_ctx included), looked up once for both (through the router and the journal).
            window = self.context_in_effect(call.options)
            self._check_cut(call, window)
            self._learn(call, window)
        return call

    def _learn(self, call: ModelCall, window: int) -> None:
        """Compare the tokens the server evaluated with the estimate (images count there, not here)."""
        if self.calibration is None or not call.prompt_tokens or any(m.get("images") for m in call.messages):
            return
        self.calibration.observe(self.model, messages_tokens(call.messages), call.prompt_tokens, context=window)

    def token_ratio(self) -> float:
        """Real prompt tokens per estimated one for this model, as learnt so far (1.0 until then)."""
        return 1.0 if self.calibration is None else self.calibration.ratio(self.model)

    def _check_cut(self, call: ModelCall, window: int) -> None:
        """Raise `PromptCut` when the server reports it evaluated as many tokens as its context (`window`) holds.

        Ollama keeps only the last num_ctx tokens of a longer prompt and reports exactly num_ctx as
        prompt_eval_count; a prompt planned to leave room for the answer never fills the window.
        """
        if call.prompt_tokens and call.prompt_tokens >= window:
            raise PromptCut(self.step_id, call.prompt_tokens, window, messages_tokens(call.messages))

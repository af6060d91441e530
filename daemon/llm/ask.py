"""Asking the model: one call or a call and one re-ask, every call recorded and checked for a cut prompt."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from daemon import defaults
from daemon.domain import ModelCall
from daemon.engine.chunking import SERVER_MINIMUM_CTX, messages_tokens
from daemon.errors import BadAnswer, GristmillError
from daemon.llm.answers import clean_text, parse_json_answer
from daemon.llm.base import ModelBackend
from daemon.llm.calibration import TokenCalibration

T = TypeVar("T")

REASK = (
    "Your answer could not be used: {problem}. Answer again with only a JSON object that matches "
    "this schema, and nothing else:\n{schema}"
)


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
    context_tokens: int = defaults.CONTEXT_TOKENS  # num_ctx to send for long prompts when the workflow sets none
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
            raise BadAnswer(f"the model's answer was unusable twice ({exc.message})", raw=second.answer or "") from exc

    def context_in_effect(self, options: dict[str, Any]) -> int:
        """The most prompt tokens the server can have evaluated for a call sent with `options`.

        Ollama caps num_ctx at the model's own context; with no num_ctx it uses its default, which
        gristmill assumes is at least SERVER_MINIMUM_CTX.
        """
        sent = int(options.get("num_ctx") or SERVER_MINIMUM_CTX)
        return min(sent, self.backend.info(self.model).context_length or sent)

    def _call(self, messages: list[dict[str, Any]], schema: dict[str, Any] | None) -> ModelCall:
        call = ModelCall(model=self.model, messages=messages, options=dict(self.options), format=schema,
                         step_id=self.step_id)
        try:
            self.backend.chat(call, think=self.think)
        finally:
            self.record(call)
        self._check_cut(call)
        self._learn(call)
        return call

    def _learn(self, call: ModelCall) -> None:
        """Compare the tokens the server evaluated with the estimate (images count there, not here)."""
        if self.calibration is None or not call.prompt_tokens or any(m.get("images") for m in call.messages):
            return
        context = self.context_in_effect(call.options)
        self.calibration.observe(self.model, messages_tokens(call.messages), call.prompt_tokens, context=context)

    def token_ratio(self) -> float:
        """Real prompt tokens per estimated one for this model, as learnt so far (1.0 until then)."""
        return 1.0 if self.calibration is None else self.calibration.ratio(self.model)

    def _check_cut(self, call: ModelCall) -> None:
        """Raise `PromptCut` when the server reports it evaluated as many tokens as its context holds.

        Ollama keeps only the last num_ctx tokens of a longer prompt and reports exactly num_ctx as
        prompt_eval_count; a prompt planned to leave room for the answer never fills the window.
        """
        if not call.prompt_tokens:  # unknown (old servers omit it on cached prompts)
            return
        window = self.context_in_effect(call.options)
        if call.prompt_tokens >= window:
            raise PromptCut(self.step_id, call.prompt_tokens, window, messages_tokens(call.messages))

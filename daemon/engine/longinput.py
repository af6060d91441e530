"""Inputs longer than the model's context: map-reduce summaries, beginning plus summary.

Works on any document text (a file, or a scheduled digest); every call goes through the step's
asker, so each one is recorded on the run, and each prompt is planned to fit the window.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from daemon.domain import ModelCall
from daemon.engine import prompts
from daemon.engine.chunking import (
    Window,
    context_in_effect,
    estimate_tokens,
    messages_tokens,
    split_text,
    window_for,
)
from daemon.errors import GristmillError, ModelError
from daemon.extract import vision
from daemon.llm.ask import Asker

log = logging.getLogger(__name__)
Messages = list[dict[str, Any]]
T = TypeVar("T")
PART_WORDS = 150  # words per partial summary: enough to keep facts, small enough to combine many


def summarise(asker: Asker, text: str, max_words: int, instructions: str | None) -> tuple[str, dict[str, Any] | None]:
    """A summary of `text`; map-reduce over chunks when it does not fit. Returns (summary, split)."""
    whole = prompts.summarise(text, max_words, instructions)
    window = window_for(asker, messages_tokens(whole), _answer_tokens(max_words))
    if messages_tokens(whole) <= window.prompt_budget:
        return asker.text(whole), None
    return _map_reduce(asker, text, max_words, instructions, window)


def _map_reduce(
    asker: Asker, text: str, max_words: int, instructions: str | None, window: Window
) -> tuple[str, dict[str, Any]]:
    part_words = min(PART_WORDS, max(max_words, 60))
    window = dataclasses.replace(window, reserve=max(window.reserve, _answer_tokens(part_words)))
    chunks = split_text(text, window.prompt_budget - messages_tokens(prompts.summarise("", part_words, instructions)))
    parts = [asker.text(prompts.summarise(chunk, part_words, instructions)) for chunk in chunks]
    calls, levels = len(chunks), 1
    while True:
        final = prompts.combine_summaries(parts, max_words)
        if messages_tokens(final) <= window.prompt_budget:
            break
        parts = [asker.text(prompts.combine_summaries(group, part_words)) for group in _groups(parts, window)]
        calls, levels = calls + len(parts), levels + 1
    summary = asker.text(final)
    split = {
        "strategy": "map-reduce", "chunks": len(chunks), "levels": levels + 1, "calls": calls + 1,
        "num_ctx": window.num_ctx, "estimated_tokens": estimate_tokens(text),
    }
    return summary, split


def _groups(parts: list[str], window: Window) -> list[list[str]]:
    """Consecutive partial summaries grouped so that each group's combine prompt fits."""
    groups: list[list[str]] = [[]]
    for part in parts:
        trial = [*groups[-1], part]
        if groups[-1] and messages_tokens(prompts.combine_summaries(trial, PART_WORDS)) > window.prompt_budget:
            groups.append([part])
        else:
            groups[-1] = trial
    if len(groups) == 1 and len(parts) > 1:  # always make progress
        middle = len(parts) // 2
        groups = [parts[:middle], parts[middle:]]
    return groups


def fit(
    asker: Asker, text: str, build: Callable[[str], Messages], answer_tokens: int
) -> tuple[str, dict[str, Any] | None]:
    """The document to send in `build`'s prompt: all of it, or its beginning plus a summary."""
    window = window_for(asker, messages_tokens(build(text)), answer_tokens)
    if messages_tokens(build(text)) <= window.prompt_budget:
        return text, None
    room = window.prompt_budget - messages_tokens(build(""))
    summary_words = max(60, min(400, room // 4 * 3 // 4))
    summary, _ = summarise(asker, text, summary_words, None)
    head_room = room - estimate_tokens(summary) - 64
    beginning = split_text(text, max(head_room, 16))[0]
    document = f"{beginning}\n\n[... the document continues; a summary of the whole document:]\n\n{summary}"
    split = {
        "strategy": "beginning+summary", "beginning_chars": len(beginning), "num_ctx": window.num_ctx,
        "estimated_tokens": estimate_tokens(text),
    }
    return document, split


def _answer_tokens(words: int) -> int:
    return words * 2 + 64


class PromptCut(GristmillError):
    """The server evaluated a whole context's worth of a prompt: it dropped the rest silently."""

    def __init__(self, step_id: str | None, evaluated: int, window: int, estimated: int) -> None:
        super().__init__(
            f"the model server cut the prompt of step '{step_id}': it read {evaluated} tokens, its whole "
            f"context of {window}, of about {estimated}"
        )
        self.evaluated, self.window, self.estimated = evaluated, window, estimated


def check_cut(asker: Asker, call: ModelCall) -> None:
    """Raise `PromptCut` when the server reports it evaluated as many tokens as its context holds.

    Ollama keeps only the last num_ctx tokens of a longer prompt and reports exactly num_ctx as
    prompt_eval_count; a prompt planned to leave room for the answer never fills the window.
    """
    if not call.prompt_tokens:  # unknown (old servers omit it on cached prompts)
        return
    window = context_in_effect(asker, call.options)
    if call.prompt_tokens >= window:
        raise PromptCut(asker.step_id, call.prompt_tokens, window, messages_tokens(call.messages))


def guarded(asker: Asker, attempt: Callable[[], T], *, replan: bool = True) -> T:
    """`attempt()` with every answer checked for a cut prompt; after a cut, plan once more, smaller.

    The second plan sends the context the server showed (num_ctx) and uses half the prompt
    budget; a second cut (or a cut where nothing was planned) fails the step with the reason.
    """
    asker.after = lambda call: check_cut(asker, call)
    try:
        return attempt()
    except PromptCut as cut:
        if not replan:
            raise _fatal(cut, "") from cut
        log.warning("%s; splitting the input smaller and asking again", cut.message)
        asker.options["num_ctx"] = cut.window
        asker.prompt_share /= 2
    try:
        return attempt()
    except PromptCut as cut:
        raise _fatal(cut, " even after splitting the input smaller") from cut


def _fatal(cut: PromptCut, after: str) -> ModelError:
    return ModelError(
        f"{cut.message}{after}; set options.num_ctx in the workflow to the context the model really "
        f"has (or shorten the instructions)"
    )


def ask_about(
    asker: Asker,
    text: str,
    images: tuple[bytes, ...],
    build: Callable[[str], Messages],
    answer_tokens: int,
    ask: Callable[[Messages], T],
) -> tuple[T, dict[str, Any] | None]:
    """`ask` the model about a document: its text fitted to the context, or its attached images."""
    if images:
        messages = vision.attach(build(vision.IMAGE_DOCUMENT), images)
        return guarded(asker, lambda: ask(messages), replan=False), None

    def attempt() -> tuple[T, dict[str, Any] | None]:
        document, split = fit(asker, text, build, answer_tokens)
        return ask(build(document)), split

    return guarded(asker, attempt)


def summary_of(
    asker: Asker, text: str, images: tuple[bytes, ...], max_words: int, instructions: str | None
) -> tuple[str, dict[str, Any] | None]:
    """A summary of a document's text (map-reduce when long) or of its attached images."""
    if images:
        build = lambda doc: prompts.summarise(doc, max_words, instructions)  # noqa: E731
        return ask_about(asker, text, images, build, _answer_tokens(max_words), asker.text)
    return guarded(asker, lambda: summarise(asker, text, max_words, instructions))

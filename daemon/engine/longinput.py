"""Inputs longer than the model's context: map-reduce summaries, beginning plus summary.

Works on any document text (a file, or a scheduled digest); every call goes through the step's
asker, so each one is recorded on the run, and each prompt is planned to fit the window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from daemon.engine import prompts
from daemon.engine.chunking import Window, estimate_tokens, messages_tokens, split_text, window_for
from daemon.llm.ask import Asker

Messages = list[dict[str, Any]]
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
    window = Window(window.num_ctx, max(window.reserve, _answer_tokens(part_words)))
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

"""Inputs longer than the model's context: map-reduce summaries, beginning plus summary, re-planning.

Works on any document text (a file, or a scheduled digest); every call goes through the step's
asker, so each one is recorded on the run, and each prompt is planned to fit the window: the
context the backend really gives the model (for Ollama, the one num_ctx it sends with every call).
Askers are immutable: a smaller plan after a cut is a changed copy.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from daemon.engine.chunking import Window, estimate_tokens, messages_tokens, split_text, window_for
from daemon.errors import ModelError
from daemon.llm import images as vision
from daemon.llm.ask import Asker, PromptCut
from daemon.llm.messages import Messages, chat

log = logging.getLogger(__name__)
progress = logging.getLogger("gristmill")
T = TypeVar("T")
PART_WORDS = 150  # words per partial summary: enough to keep facts, small enough to combine many
Split = dict[str, Any] | None  # how a long input was split, for the run's record


def summary_request(document: str, max_words: int, instructions: str | None = None) -> Messages:
    """Ask for a plain-text summary of at most `max_words` words."""
    task = (
        f"Summarise the document below in at most {max_words} words. Answer with the summary "
        "only, in the document's language, without a heading."
    )
    return chat(task, document, instructions)


def combine_request(parts: list[str], max_words: int) -> Messages:
    """Ask to merge partial summaries of consecutive chunks into one."""
    joined = "\n\n".join(f"Part {i}: {text}" for i, text in enumerate(parts, 1))
    task = (
        f"These are summaries of consecutive parts of one document. Write one summary of the "
        f"whole document in at most {max_words} words. Answer with the summary only."
    )
    return chat(task, joined)


def condense(asker: Asker, text: str, max_words: int, instructions: str | None) -> tuple[str, Split]:
    """A summary of `text`; map-reduce over chunks when it does not fit. Returns (summary, split)."""
    whole = summary_request(text, max_words, instructions)
    window = window_for(asker, answer_tokens(max_words))
    if messages_tokens(whole) <= window.prompt_budget:
        return asker.text(whole), None
    return _map_reduce(asker, text, max_words, instructions, window)


def _map_reduce(asker: Asker, text: str, max_words: int, instructions: str | None, window: Window) -> tuple[str, Split]:
    part_words = min(PART_WORDS, max(max_words, 60))
    window = dataclasses.replace(window, reserve=max(window.reserve, answer_tokens(part_words)))
    empty = messages_tokens(summary_request("", part_words, instructions))
    chunks = split_text(text, window.prompt_budget - empty)
    parts = []
    for n, chunk in enumerate(chunks, 1):
        parts.append(asker.text(summary_request(chunk, part_words, instructions)))
        # A long run's progress: the user waiting on it sees it move, part by part.
        progress.info("%s step %s: summarised part %d of %d of a long input", asker.about, asker.step_id, n,
                      len(chunks))  # fmt: skip
    calls, levels = len(chunks), 1
    while True:
        final = combine_request(parts, max_words)
        if messages_tokens(final) <= window.prompt_budget:
            break
        parts = [asker.text(combine_request(group, part_words)) for group in _groups(parts, window)]
        calls, levels = calls + len(parts), levels + 1
    summary = asker.text(final)
    split = {
        "strategy": "map-reduce",
        "chunks": len(chunks),
        "levels": levels + 1,
        "calls": calls + 1,
        "num_ctx": window.num_ctx,
        "estimated_tokens": estimate_tokens(text),
        **_learnt(window),
    }  # fmt: skip  (one record, read as one)
    return summary, split


def _groups(parts: list[str], window: Window) -> list[list[str]]:
    """Consecutive partial summaries grouped so that each group's combine prompt fits."""
    groups: list[list[str]] = [[]]
    for part in parts:
        trial = [*groups[-1], part]
        if groups[-1] and messages_tokens(combine_request(trial, PART_WORDS)) > window.prompt_budget:
            groups.append([part])
        else:
            groups[-1] = trial
    if len(groups) == 1 and len(parts) > 1:  # always make progress
        middle = len(parts) // 2
        groups = [parts[:middle], parts[middle:]]
    return groups


def fit(asker: Asker, text: str, build: Callable[[str], Messages], reply_tokens: int) -> tuple[Asker, str, Split]:
    """The asker and document to send in `build`'s prompt: all of it, or its beginning plus a summary."""
    window = window_for(asker, reply_tokens)
    if messages_tokens(build(text)) <= window.prompt_budget:
        return asker, text, None
    room = window.prompt_budget - messages_tokens(build(""))
    summary_words = max(60, min(400, room // 4 * 3 // 4))
    summary, _ = condense(asker, text, summary_words, None)
    head_room = room - estimate_tokens(summary) - 64
    beginning = split_text(text, max(head_room, 16))[0]
    document = f"{beginning}\n\n[... the document continues; a summary of the whole document:]\n\n{summary}"
    split = {
        "strategy": "beginning+summary",
        "beginning_chars": len(beginning),
        "num_ctx": window.num_ctx,
        "estimated_tokens": estimate_tokens(text),
        **_learnt(window),
    }  # fmt: skip  (one record, read as one)
    return asker, document, split


def _learnt(window: Window) -> dict[str, float]:
    """The learnt tokens-per-estimate ratio the plan used, when there was one (see TokenCalibration)."""
    return {} if window.ratio == 1.0 else {"token_ratio": round(window.ratio, 3)}


def answer_tokens(words: int) -> int:
    """Tokens to leave for an answer of about `words` words."""
    return words * 2 + 64


def guarded(asker: Asker, attempt: Callable[[Asker], T], *, replan: bool = True) -> T:
    """`attempt(asker)`; after a cut prompt, once more with a smaller plan.

    The second plan sends the context the server showed (num_ctx) and uses half the prompt
    budget; a second cut (or a cut where nothing was planned) fails the step with the reason.
    """
    try:
        return attempt(asker)
    except PromptCut as cut:
        if not replan:
            raise _fatal(cut, "") from cut
        log.warning("%s; splitting the input smaller and asking again", cut.message)
        smaller = asker.with_(options={"num_ctx": cut.window}, prompt_share=asker.prompt_share / 2)
    try:
        return attempt(smaller)
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
    reply_tokens: int,
    ask: Callable[[Asker, Messages], T],
) -> tuple[T, Split]:
    """`ask` the model about a document: its text fitted to the context, or its attached images."""
    if images:
        messages = vision.attach(build(vision.IMAGE_DOCUMENT), images)
        return guarded(asker, lambda a: ask(a, messages), replan=False), None

    def attempt(a: Asker) -> tuple[T, Split]:
        fitted, document, split = fit(a, text, build, reply_tokens)
        return ask(fitted, build(document)), split

    return guarded(asker, attempt)


def summary_of(
    asker: Asker, text: str, images: tuple[bytes, ...], max_words: int, instructions: str | None
) -> tuple[str, Split]:
    """A summary of a document's text (map-reduce when long) or of its attached images."""
    if images:
        build = lambda doc: summary_request(doc, max_words, instructions)  # noqa: E731
        return ask_about(asker, text, images, build, answer_tokens(max_words), lambda a, m: a.text(m))
    return guarded(asker, lambda a: condense(a, text, max_words, instructions))

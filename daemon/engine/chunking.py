"""Token estimates, the model's context window, and cutting text into pieces that fit."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from daemon.llm.ask import Asker

_PER_MESSAGE = 8
_PARAGRAPHS = re.compile(r"\n\s*\n")


def estimate_tokens(text: str) -> int:
    """A conservative token count: the larger of chars/3 and words*4/3 (real tokenizers give less)."""
    return max(-(-len(text) // 3), -(-len(text.split()) * 4 // 3))


def messages_tokens(messages: list[dict[str, Any]]) -> int:
    """Estimated prompt tokens of a conversation, with the chat template's overhead."""
    return sum(estimate_tokens(str(m.get("content") or "")) + _PER_MESSAGE for m in messages)


@dataclass(frozen=True)
class Window:
    """How many tokens one call may use: the context, what the answer needs, what the prompt may."""

    num_ctx: int
    reserve: int
    share: float = 1.0  # below 1 after the server cut a prompt planned with the full budget

    @property
    def prompt_budget(self) -> int:
        return int((self.num_ctx - self.reserve) * self.share)


def window_for(asker: Asker, answer_tokens: int) -> Window:
    """The window every call of the asker has: the context its backend really gives (the num_ctx it sends)."""
    return Window(asker.context_in_effect(asker.options), max(answer_tokens, 128), asker.prompt_share)


def split_text(text: str, budget_tokens: int) -> list[str]:
    """Consecutive pieces of `text`, each estimated at most `budget_tokens`, cut at paragraphs if possible."""
    if budget_tokens < 16:
        raise ValueError("the context is too small to hold any part of the document")
    pieces: list[str] = []
    current = ""
    for unit in _units(text, budget_tokens):
        joined = f"{current}\n\n{unit}" if current else unit
        if estimate_tokens(joined) <= budget_tokens:
            current = joined
        else:
            pieces.append(current) if current else None
            current = unit
    if current:
        pieces.append(current)
    return pieces


def _units(text: str, budget: int) -> list[str]:
    """Paragraphs, with any paragraph too big on its own cut into word runs that fit."""
    units: list[str] = []
    for paragraph in _PARAGRAPHS.split(text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        if estimate_tokens(paragraph) <= budget:
            units.append(paragraph)
            continue
        words, run = paragraph.split(), []
        for word in words:
            word = word[: budget * 3 // 2]  # a "word" longer than the budget (base64 ...) is cut
            if estimate_tokens(" ".join([*run, word])) > budget:
                units.append(" ".join(run))
                run = []
            run.append(word)
        if run:
            units.append(" ".join(run))
    return units

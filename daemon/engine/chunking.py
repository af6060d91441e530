"""Token estimates, the model's context window, and cutting text into pieces that fit."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from daemon.llm.ask import Asker

_PER_MESSAGE = 8
_PARAGRAPHS = re.compile(r"\n\s*\n")
# Scripts written without spaces between words (and Hangul, whose syllables tokenise alike): real
# tokenizers spend about a token per character on them, where chars/3 would guess a third of that.
_DENSE = re.compile(
    "[\u0e00-\u0fff\u1000-\u109f\u1100-\u11ff\u1780-\u17ff\u2e80-\u2fdf\u3000-\u9fff"
    "\ua000-\ua4cf\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\U00020000-\U0003134f]"
)


def estimate_tokens(text: str) -> int:
    """A conservative token count (real tokenizers give less).

    One token per character of CJK, Thai and similar scripts; for the rest the larger of chars/3
    and words*4/3.
    """
    # str.isascii() reads a flag the string keeps: most documents skip the scan for dense scripts.
    rest, dense = (text, 0) if text.isascii() else _DENSE.subn(" ", text)
    return dense + max(-(-(len(text) - dense) // 3), -(-len(rest.split()) * 4 // 3))


def messages_tokens(messages: list[dict[str, Any]]) -> int:
    """Estimated prompt tokens of a conversation, with the chat template's overhead."""
    return sum(estimate_tokens(str(m.get("content") or "")) + _PER_MESSAGE for m in messages)


@dataclass(frozen=True)
class Window:
    """How many tokens one call may use: the context, what the answer needs, what the prompt may."""

    num_ctx: int
    reserve: int
    share: float = 1.0  # below 1 after the server cut a prompt planned with the full budget
    ratio: float = 1.0  # the model's real tokens per estimated token, learnt from prompt_eval_count

    @property
    def prompt_budget(self) -> int:
        """The prompt's room in estimated tokens: the real room, scaled by what was learnt of the tokenizer."""
        return int((self.num_ctx - self.reserve) * self.share / self.ratio)


def window_for(asker: Asker, answer_tokens: int) -> Window:
    """The window every call of the asker has: the context its backend really gives (the num_ctx it sends).

    Its prompt budget is in estimated tokens, scaled by what was learnt of the model's tokenizer.
    """
    ratio = asker.token_ratio()
    return Window(asker.context_in_effect(asker.options), max(answer_tokens, 128), asker.prompt_share, ratio)


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
        run: list[str] = []
        for word in paragraph.split():
            for part in _parts(word, budget):
                if run and estimate_tokens(" ".join([*run, part])) > budget:
                    units.append(" ".join(run))
                    run = []
                run.append(part)
        if run:
            units.append(" ".join(run))
    return units


def _parts(word: str, budget: int) -> list[str]:
    """A "word" too big for the budget (base64, or CJK text without spaces) in pieces that fit, none lost.

    No character is estimated at more than one token, so `budget` characters always fit.
    """
    if estimate_tokens(word) <= budget:
        return [word]
    return [word[i : i + budget] for i in range(0, len(word), budget)]

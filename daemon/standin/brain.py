"""The stand-in's deterministic "model": pure functions from a request to an answer, no I/O.

The model reads the document inside `<document>...</document>` of the last user message (else that
whole message) with every `[[standin:NAME]]` marker removed:
- free text: the document's first words (as many as an "at most N words" in the prompt says, else 30);
  an image: "An image of N bytes." per image; an empty document: "The document is empty.";
- `format` "json" / response_format json_object, or a schema without properties: {"text": <free text>};
- a JSON schema: filled from the document as fill.py describes (also the weak model's rule);
- a JSON schema written into the prompt after the words "JSON schema:" (how gristmill asks servers
  that refuse `response_format` json_schema) is followed like a `format` schema when the request
  names no schema of its own, with `format` "json" or none.
Tokens are words x 4/3 rounded up (`count_tokens`); a prompt longer than num_ctx tokens keeps only its
last num_ctx tokens, silently, as Ollama does. An answer longer than max_tokens (num_predict on
Ollama) keeps its first max_tokens x 3/4 words and ends with "length". Quirks (config.py) change
the answer; a `[[standin:NAME]]` marker anywhere in the prompt switches one on for that request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from daemon.standin.config import QUIRKS
from daemon.standin.fill import fill

THINK_PREFIX = "<think>Let me think about this.</think>\n"
THINKING_TEXT = "Considering the document."
GARBAGE = "I am not sure what you mean. Bananas are yellow, and so is the sun."
GARBAGE_ONCE = "Sure! Here is what you asked for:"
IGNORED_SCHEMA = "Here is the JSON you asked for:\n```json\n{}\n```\nLet me know if you need anything else."
HARD_MARKER = "[[standin:hard]]"
DEFAULT_WORDS = 30

_WORD = re.compile(r"\S+")
_MARKER = re.compile(r"\[\[standin:([a-z_]+)\]\]")
_DOCUMENT = re.compile(r"<document\b[^>]*>(.*?)(?:</document>|\Z)", re.DOTALL | re.IGNORECASE)
_AT_MOST = re.compile(r"at most (\d+) words", re.IGNORECASE)
_OBEY_REPLY = re.compile(r"reply with:[ \t]*(.+)", re.IGNORECASE)
_SCHEMA_SAID = "JSON schema:"


@dataclass(frozen=True)
class Request:
    """What the brain needs, whichever API asked: messages in Ollama's shape, and switches."""

    messages: list[dict[str, Any]]
    format: Any = None
    num_ctx: int = 8192
    quirks: frozenset[str] = frozenset()
    think: bool = False
    first_time: bool = True
    weak: bool = False
    max_tokens: int | None = None


@dataclass(frozen=True)
class Answer:
    """The model's reply, its token counts and why it ended ("stop" or "length")."""

    content: str
    thinking: str | None
    prompt_eval_count: int
    eval_count: int
    done_reason: str = "stop"


def count_tokens(text: str) -> int:
    """Token estimate: whitespace-separated words x 4/3, rounded up (3 words = 4 tokens)."""
    return -(-len(text.split()) * 4 // 3)


def images_of(messages: list[dict[str, Any]]) -> list[str]:
    """All base64 images carried by the messages."""
    return [img for m in messages for img in m.get("images") or []]


def decode_image(data: str) -> bytes:
    """The bytes of a base64 image; ValueError when it is not base64."""
    return base64.b64decode(data, validate=True)


def quirks_for(messages: list[dict[str, Any]], configured: set[str]) -> frozenset[str]:
    """Configured quirks plus `[[standin:NAME]]` markers found in any message."""
    marked = set(_MARKER.findall(prompt_text(messages))) & QUIRKS
    return frozenset(set(configured) | marked)


def prompt_key(messages: list[dict[str, Any]]) -> str:
    """Identity of a prompt for "garbage_once": the first user message, so re-asks match."""
    first = next((m.get("content") or "" for m in messages if m.get("role") == "user"), "")
    return hashlib.sha256(str(first).encode()).hexdigest()


def prompt_text(messages: list[dict[str, Any]]) -> str:
    """All message contents, one after another."""
    return "\n".join(str(m.get("content") or "") for m in messages)


def truncate(messages: list[dict[str, Any]], num_ctx: int) -> tuple[list[dict[str, Any]], int]:
    """Keep only the last num_ctx tokens, silently as Ollama does; return (messages, tokens)."""
    total = count_tokens(prompt_text(messages))
    if total <= num_ctx:
        return messages, total
    budget = max(num_ctx, 0) * 3 // 4
    kept: list[dict[str, Any]] = []
    for message in reversed(messages):
        text = str(message.get("content") or "")
        starts = [m.start() for m in _WORD.finditer(text)]
        if len(starts) <= budget:
            kept.append(message)
            budget -= len(starts)
            continue
        if budget:
            kept.append({**message, "content": text[starts[-budget] :]})
        break
    return kept[::-1], num_ctx


def latency_for(latency: float, quirks: frozenset[str]) -> float:
    """Seconds an answer takes: the configured latency, 10x (or 2 s if zero) when "slow"."""
    latency = max(0.0, latency)
    if "slow" in quirks:
        return latency * 10 if latency > 0 else 2.0
    return latency


def respond(request: Request) -> Answer:
    """The deterministic answer to a request."""
    messages, prompt_tokens = truncate(request.messages, request.num_ctx)
    content = _content(messages, request)
    if "think" in request.quirks:
        content = THINK_PREFIX + content
    reasons = request.think or "reasoning_content" in request.quirks
    thinking = THINKING_TEXT if reasons else None
    content, done_reason = limit(content, thinking, request.max_tokens, "cut" in request.quirks)
    eval_count = count_tokens(f"{content} {thinking or ''}")
    return Answer(content, thinking, prompt_tokens, eval_count, done_reason)


def limit(content: str, thinking: str | None, max_tokens: int | None, cut: bool) -> tuple[str, str]:
    """The content within max_tokens, reasoning included, and halved by the "cut" quirk; "stop" or "length".

    max_tokens allows max_tokens x 3/4 words (rounded down) of reasoning and content together; the
    reasoning is kept whole and the content loses its last words.
    """
    words = re.findall(r"\S+\s*", content)
    keep = len(words) // 2 if cut else len(words)
    if max_tokens is not None:
        keep = min(keep, max(0, max(max_tokens, 0) * 3 // 4 - len((thinking or "").split())))
    if keep >= len(words) and not (cut and words):
        return content, "stop"
    return "".join(words[:keep]).rstrip(), "length"


def is_hard(messages: list[dict[str, Any]]) -> bool:
    """Whether a prompt carries the `[[standin:hard]]` marker that trips a weak model."""
    return HARD_MARKER in prompt_text(messages)


def document_of(messages: list[dict[str, Any]]) -> str:
    """Text inside `<document>...</document>` of the last user message, else all of it."""
    user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    text = str(user.get("content") or "")
    if found := _DOCUMENT.search(text):
        text = found.group(1)
    elif "</document>" in text:
        text = text.split("</document>", 1)[0]  # the opening tag was truncated away
    return _MARKER.sub("", text).strip()


def split_pieces(text: str, pieces: int = 3) -> list[str]:
    """Text cut at word boundaries into about `pieces` parts that join back exactly."""
    words = re.findall(r"\s*\S+\s*", text) or [text]
    size = -(-len(words) // pieces)
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


def pieces(text: str | None) -> list[str]:
    """Stream pieces of a text; none for an empty one."""
    return split_pieces(text) if text else []


def _content(messages: list[dict[str, Any]], request: Request) -> str:
    quirks = request.quirks
    if "garbage" in quirks:
        return GARBAGE
    if "garbage_once" in quirks and request.first_time:
        return GARBAGE_ONCE
    doc = document_of(messages)
    fmt = request.format if isinstance(request.format, dict) else schema_in_prompt(messages) or request.format
    if not fmt:
        return _free_text(messages, doc, quirks)
    if isinstance(fmt, dict) and (fmt.get("properties") or fmt.get("type") not in (None, "object")):
        answer = json.dumps(fill(fmt, doc, quirks, request.weak and is_hard(request.messages)))
    else:
        answer = json.dumps({"text": _free_text(messages, doc, quirks)})
    if "ignore_schema" in quirks:
        return IGNORED_SCHEMA.format(answer)
    return f"```json\n{answer}\n```" if "fence" in quirks else answer


def schema_in_prompt(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A JSON schema written into a system or user message after "JSON schema:", if any."""
    for message in messages:
        text = str(message.get("content") or "") if message.get("role") != "assistant" else ""
        at = text.find(_SCHEMA_SAID)
        start = text.find("{", at) if at >= 0 else -1
        if start < 0:
            continue
        try:
            schema, _ = json.JSONDecoder().raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(schema, dict):
            return schema
    return None


def _free_text(messages: list[dict[str, Any]], doc: str, quirks: frozenset[str]) -> str:
    if "obey" in quirks and (reply := _OBEY_REPLY.search(doc)):
        return reply.group(1).strip()
    user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    if images := user.get("images"):
        return " ".join(f"An image of {len(decode_image(img))} bytes." for img in images)
    words = doc.split()
    if not words:
        return "The document is empty."
    limit = _AT_MOST.search(prompt_text([m for m in messages if m.get("role") != "assistant"]))
    return " ".join(words[: int(limit.group(1)) if limit else DEFAULT_WORDS])

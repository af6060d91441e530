"""The stand-in's deterministic "model" and the Ollama shapes around it: pure functions, no I/O."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from daemon.standin.config import QUIRKS, StandinConfig

THINK_PREFIX = "<think>Let me think about this.</think>\n"
THINKING_TEXT = "Considering the document."
GARBAGE = "I am not sure what you mean. Bananas are yellow, and so is the sun."
GARBAGE_ONCE = "Sure! Here is what you asked for:"
LOAD_NS = 1_000_000
DEFAULT_WORDS = 30

_WORD = re.compile(r"\S+")
_MARKER = re.compile(r"\[\[standin:([a-z_]+)\]\]")
_DOCUMENT = re.compile(r"<document\b[^>]*>(.*?)(?:</document>|\Z)", re.DOTALL | re.IGNORECASE)
_AT_MOST = re.compile(r"at most (\d+) words", re.IGNORECASE)
_OBEY_LABEL = re.compile(r"answer with label\s+[\"'`]?([^\s\"'`]+)", re.IGNORECASE)
_OBEY_REPLY = re.compile(r"reply with:[ \t]*(.+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_THOUSANDS = re.compile(r"(?<=\d)[,'\u00a0\u202f ](?=\d{3}(?!\d))")
_TRUE = {"yes", "y", "true", "1", "on", "x", "ja", "oui"}
_EMPTY: dict[str, Any] = {"string": "", "number": 0, "integer": 0, "boolean": False}


@dataclass(frozen=True)
class Request:
    """What the brain needs: the messages (generate is turned into messages) and switches."""

    messages: list[dict[str, Any]]
    format: Any = None
    options: dict[str, Any] = field(default_factory=dict)
    context_length: int = 8192
    quirks: frozenset[str] = frozenset()
    think: bool = False
    first_time: bool = True


@dataclass(frozen=True)
class Answer:
    """The model's reply and its token counts."""

    content: str
    thinking: str | None
    prompt_eval_count: int
    eval_count: int


def count_tokens(text: str) -> int:
    """Token estimate: whitespace-separated words x 4/3, rounded up (3 words = 4 tokens)."""
    return -(-len(text.split()) * 4 // 3)


def messages_of(kind: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The conversation of a chat body, or a generate body's system + prompt as messages."""
    if kind == "chat":
        return [m for m in body.get("messages") or [] if isinstance(m, dict)]
    messages = [{"role": "system", "content": body["system"]}] if body.get("system") else []
    user = {"role": "user", "content": body.get("prompt") or "", "images": body.get("images") or []}
    return messages + [user]


def problem(kind: str, body: dict[str, Any], config: StandinConfig) -> tuple[int, str] | None:
    """The error Ollama would answer before running the model, if any."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        return 400, "model is required"
    if not config.knows(model):
        if kind == "chat":
            return 404, f'model "{model}" not found, try pulling it first'
        return 404, f"model '{model}' not found"
    fmt = body.get("format")
    if not (fmt is None or isinstance(fmt, dict) or fmt in ("", "json")):
        return 400, 'invalid format: expected "json" or a valid JSON schema'
    images = images_of(messages_of(kind, body))
    if images and not config.is_vision(model):
        reason = "this model is missing data required for image input"
        return 400, f'"{model}" does not support images: {reason}'
    for image in images:
        try:
            decode_image(image)
        except (ValueError, TypeError):  # binascii.Error is a ValueError
            return 400, "illegal base64 data at input byte 0"
    if body.get("think") is True and not config.is_thinking(model):
        return 400, f'"{model}" does not support thinking'
    return None


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


def request_for(
    body: dict[str, Any],
    messages: list[dict[str, Any]],
    config: StandinConfig,
    quirks: frozenset[str],
    first_time: bool,
) -> Request:
    """The brain's view of a chat/generate body (thinking models think unless told not to)."""
    options = body.get("options") if isinstance(body.get("options"), dict) else {}
    think = config.is_thinking(body["model"]) and body.get("think") is not False
    return Request(
        messages, body.get("format"), options, config.context_length, quirks, think, first_time
    )


def latency_for(latency: float, quirks: frozenset[str]) -> float:
    """Seconds an answer takes: the configured latency, 10x (or 2 s if zero) when "slow"."""
    latency = max(0.0, latency)
    if "slow" in quirks:
        return latency * 10 if latency > 0 else 2.0
    return latency


def respond(request: Request) -> Answer:
    """The deterministic answer to a chat or generate request."""
    num_ctx = int((request.options or {}).get("num_ctx") or request.context_length)
    messages, prompt_tokens = truncate(request.messages, num_ctx)
    content = _content(messages, request)
    if "think" in request.quirks:
        content = THINK_PREFIX + content
    thinking = THINKING_TEXT if request.think else None
    eval_count = count_tokens(f"{content} {thinking or ''}")
    return Answer(content, thinking, prompt_tokens, eval_count)


def document_of(messages: list[dict[str, Any]]) -> str:
    """Text inside `<document>...</document>` of the last user message, else all of it."""
    user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    text = str(user.get("content") or "")
    if found := _DOCUMENT.search(text):
        text = found.group(1)
    elif "</document>" in text:
        text = text.split("</document>", 1)[0]  # the opening tag was truncated away
    return _MARKER.sub("", text).strip()


def durations(latency: float, elapsed_ns: int) -> dict[str, int]:
    """Nanosecond timings that add up: load + prompt eval + eval <= total."""
    work = int(latency * 1e9)
    prompt = max(work // 4, 1000)
    evaluation = max(work - work // 4, 1000)
    total = max(elapsed_ns, LOAD_NS + prompt + evaluation)
    return {
        "total_duration": total,
        "load_duration": LOAD_NS,
        "prompt_eval_duration": prompt,
        "eval_duration": evaluation,
    }


def split_pieces(text: str, pieces: int = 3) -> list[str]:
    """Text cut at word boundaries into about `pieces` parts that join back exactly."""
    words = re.findall(r"\s*\S+\s*", text) or [text]
    size = -(-len(words) // pieces)
    return ["".join(words[i : i + size]) for i in range(0, len(words), size)]


def frame(
    kind: str, body: dict[str, Any], text: str, thinking: str | None, done: bool
) -> dict[str, Any]:
    """One response object (a stream chunk or the start of the final one)."""
    out: dict[str, Any] = {"model": body.get("model"), "created_at": _now()}
    if kind == "chat":
        out["message"] = {"role": "assistant", "content": text}
        if thinking:
            out["message"]["thinking"] = thinking
    else:
        out["response"] = text
        if thinking:
            out["thinking"] = thinking
    out["done"] = done
    return out


def pieces(text: str | None) -> list[str]:
    """Stream pieces of a text; none for an empty one."""
    return split_pieces(text) if text else []


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _content(messages: list[dict[str, Any]], request: Request) -> str:
    quirks = request.quirks
    if "garbage" in quirks:
        return GARBAGE
    if "garbage_once" in quirks and request.first_time:
        return GARBAGE_ONCE
    doc = document_of(messages)
    fmt = request.format
    if not fmt:
        return _free_text(messages, doc, quirks)
    if isinstance(fmt, dict) and (fmt.get("properties") or fmt.get("type") not in (None, "object")):
        answer = json.dumps(_Builder(doc, quirks, fmt.get("$defs") or {}).value("value", fmt))
    else:
        answer = json.dumps({"text": _free_text(messages, doc, quirks)})
    return f"```json\n{answer}\n```" if "fence" in quirks else answer


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


def pick_label(labels: list[Any], doc: str) -> tuple[Any, bool]:
    """The label occurring most often in the document (ties: earliest); (label, found)."""
    best, best_count = labels[0], 0
    for label in labels:
        if isinstance(label, str) and label.strip():
            count = len(_words_pattern(label).findall(doc))
            if count > best_count:
                best, best_count = label, count
    return best, best_count > 0


def _words_regex(name: str) -> str:
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
    return r"[\s_\-]+".join(re.escape(p) for p in re.split(r"[\s_\-]+", spaced) if p)


def _words_pattern(name: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\w)" + _words_regex(name) + r"(?!\w)", re.IGNORECASE)


def _field_line(doc: str, name: str) -> str | None:
    label = _words_regex(name)
    line = re.search(rf"^[ \t>*#\-]*{label}[ \t*]*:[ \t]*(.*?)[ \t]*$", doc, re.I | re.M)
    return line.group(1) if line and line.group(1) else None


def _number(text: str) -> float | None:
    found = _NUMBER.search(_THOUSANDS.sub("", text))
    return float(found.group()) if found else None


class _Builder:
    """Fills a JSON schema from a document, the way the stand-in "model" answers."""

    def __init__(self, doc: str, quirks: frozenset[str], defs: dict[str, Any]) -> None:
        self.doc, self.quirks, self.defs = doc, quirks, defs
        self.found: list[bool] = []
        obey = _OBEY_LABEL.search(doc) if "obey" in quirks else None
        self.obey = obey.group(1).rstrip(".,;:!?)") if obey else None

    def value(self, name: str, schema: dict[str, Any]) -> Any:
        """The answer for one property."""
        schema, kind, nullable = self._resolve(schema)
        if "enum" in schema and schema["enum"]:
            return self._label(list(schema["enum"]))
        if kind == "object":
            return self._object(schema)
        if kind == "array" and "enum" in self._resolve(schema.get("items") or {})[0]:
            return self._labels(list(self._resolve(schema["items"])[0]["enum"]))
        if self.obey is not None and kind == "string":
            return self.obey
        raw = _field_line(self.doc, name)
        value = None if raw is None else self._coerce(raw, kind, schema)
        if value is None and not nullable:
            return [] if kind == "array" else _EMPTY.get(kind)
        return value

    def _object(self, schema: dict[str, Any]) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties") or {}
        out = {n: self.value(n, p) for n, p in props.items() if not self._is_confidence(n, p)}
        for name in props:
            if self._is_confidence(name, props[name]):
                out[name] = 0.9 if not self.found or any(self.found) else 0.2
        out = {name: out[name] for name in props}
        return out | {name: None for name in schema.get("required") or [] if name not in out}

    def _is_confidence(self, name: str, schema: dict[str, Any]) -> bool:
        return name.lower() == "confidence" and self._resolve(schema)[1] == "number"

    def _label(self, labels: list[Any]) -> Any:
        label, found = pick_label(labels, self.doc)
        self.found.append(found)
        if "unknown_label" in self.quirks:
            label = "banana"
        elif self.obey is not None:
            label = self.obey
        if "wrong_case" in self.quirks and isinstance(label, str):
            label = label.upper() + "."
        return label

    def _labels(self, labels: list[Any]) -> list[Any]:
        return [label for label in labels if pick_label([label], self.doc)[1]]

    def _coerce(self, raw: str, kind: str | None, schema: dict[str, Any]) -> Any:
        if kind == "number":
            return _number(raw)
        if kind == "integer":
            number = _number(raw)
            return None if number is None else int(number)
        if kind == "boolean":
            return raw.strip(" .").lower() in _TRUE
        if kind == "array":
            items, item_kind, _ = self._resolve(schema.get("items") or {})
            parts = [p.strip() for p in raw.split(",") if p.strip()]
            return [self._coerce(p, item_kind, items) for p in parts]
        return raw

    def _resolve(self, schema: dict[str, Any]) -> tuple[dict[str, Any], str | None, bool]:
        """Follow $ref/anyOf/allOf; return (schema, main type, whether null is allowed)."""
        nullable = False
        for _ in range(16):
            if "$ref" in schema:
                schema = {**self.defs.get(schema["$ref"].rsplit("/", 1)[-1], {}), **_sans(schema)}
            elif options := schema.get("anyOf") or schema.get("oneOf"):
                nullable |= any(o.get("type") == "null" for o in options)
                real = [o for o in options if o.get("type") != "null"] or [{"type": "null"}]
                schema = {**real[0], **_sans(schema)}
            elif len(schema.get("allOf") or ()) == 1:
                schema = {**schema["allOf"][0], **_sans(schema)}
            else:
                break
        kind = schema.get("type")
        if isinstance(kind, list):
            nullable |= "null" in kind
            kind = next((k for k in kind if k != "null"), None)
        if kind is None and "properties" in schema:
            kind = "object"
        return schema, kind, nullable


def _sans(schema: dict[str, Any]) -> dict[str, Any]:
    # Keep the description beside a $ref/anyOf; everything else comes from the target.
    return {k: v for k, v in schema.items() if k == "description"}

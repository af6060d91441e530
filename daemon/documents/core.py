"""Choosing the extractor for a document and applying the limits."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon import defaults
from daemon.errors import InputError, PermanentInputError, SkipRun
from daemon.documents import images, sandbox, text
from daemon.documents.sniff import Kind, sniff


@dataclass(frozen=True)
class ReadLimits:
    """How much of a document is read, and what an untrusted parser may use."""

    max_chars: int = defaults.MAX_CHARS
    seconds: float = defaults.EXTRACT_SECONDS
    memory_mb: int = defaults.EXTRACT_MEMORY_MB

    @property
    def max_unpacked(self) -> int:
        """Bytes a compressed part may unpack to: ample for `max_chars` of marked-up text."""
        return max(self.max_chars * 40, 16 << 20)


@dataclass(frozen=True)
class Document:
    """A document as the model reads it: its text (or images) and what was learnt reading it."""

    text: str
    kind: str
    meta: dict[str, Any] = field(default_factory=dict)
    truncated: bool = False
    images: tuple[bytes, ...] = ()


def read_document(
    path: Path, data: bytes, limits: ReadLimits, *, waiting: Callable[[], AbstractContextManager[Any]] = nullcontext
) -> Document:
    """Text of `data` (read from `path`); `SkipRun` or `InputError` in one sentence otherwise.

    `waiting()` is entered while a sandboxed child parses (the caller's crash accounting).
    """
    kind = sniff(path, data)
    if kind is Kind.EMPTY:
        raise SkipRun(f"{path.name} is empty; nothing to read")
    if kind in (Kind.BINARY, Kind.ZIP):
        what = "a zip archive" if kind is Kind.ZIP else "a binary file"
        raise SkipRun(f"{path.name} is {what}, not a document gristmill can read; nothing to send")
    if kind is Kind.IMAGE:
        return Document("", kind.value, images.describe(data), images=(data,))
    body, meta = _text_of(kind, path, data, limits, waiting)
    if not body.strip():
        raise SkipRun(_nothing(kind, path, meta))
    if len(body) > limits.max_chars:
        return Document(body[: limits.max_chars], kind.value, meta | {"chars": len(body)}, truncated=True)
    return Document(body, kind.value, meta)


def _text_of(
    kind: Kind, path: Path, data: bytes, limits: ReadLimits, waiting: Callable[[], AbstractContextManager[Any]]
) -> tuple[str, dict[str, Any]]:
    if kind is Kind.TEXT:
        return text.plain(data)
    if kind is Kind.CSV:
        return text.table(data)
    if kind is Kind.JSON:
        return text.json_text(data)
    parser, args = {
        Kind.PDF: ("pdf", [limits.max_chars]),
        Kind.DOCX: ("docx", [limits.max_chars, limits.max_unpacked]),
        Kind.HTML: ("html", []),
        Kind.EMAIL: ("email", []),
    }[kind]
    with waiting():
        outcome, value = sandbox.SANDBOX.run(parser, data, args, seconds=limits.seconds, memory_mb=limits.memory_mb)
    if outcome == sandbox.Outcome.OK:
        return value[0], value[1]
    label = {Kind.PDF: "PDF", Kind.DOCX: "Word document", Kind.HTML: "web page", Kind.EMAIL: "e-mail"}[kind]
    # The parser's verdict on these bytes will not change; a timeout or a dead process might.
    final = outcome in (sandbox.Outcome.ERROR, sandbox.Outcome.MEMORY)
    error = PermanentInputError if final else InputError
    raise error(f"{path.name} could not be read as a {label}: {_why(outcome, value)}")


def _why(outcome: str, value: str) -> str:
    if outcome == sandbox.Outcome.TIMEOUT:
        return f"reading it {value} (the limit is GRISTMILL_EXTRACT_SECONDS)"
    if outcome == sandbox.Outcome.MEMORY:
        return f"reading it {value} (the limit is GRISTMILL_EXTRACT_MEMORY_MB); a decompression bomb?"
    return value


def _nothing(kind: Kind, path: Path, meta: dict[str, Any]) -> str:
    if kind is Kind.PDF:
        pages = meta.get("pages")
        return f"{path.name} has no text layer ({pages} page(s), a scan?); nothing to send to the model"
    return f"{path.name} contains no text; nothing to send to the model"

"""Choosing the extractor for a document and applying the limits."""

from __future__ import annotations

import base64
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon import defaults
from daemon.documents import images, sandbox, text
from daemon.documents.sniff import Kind, sniff
from daemon.errors import InputError, PermanentInputError, SkipRun
from daemon.words import count


@dataclass(frozen=True)
class ReadLimits:
    """How much of a document is read, and what an untrusted parser may use."""

    max_chars: int = defaults.MAX_CHARS
    seconds: float = defaults.EXTRACT_SECONDS
    memory_mb: int = defaults.EXTRACT_MEMORY_MB
    # Pages of a PDF without a text layer rendered as images for a vision model; 0: none (a
    # text-less PDF is skipped). The pixel limit caps each page's bitmap (and so the child's memory).
    scan_pages: int = 0
    scan_pixels: int = 4_000_000
    scan_dpi: int = 150

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
    # The page number of each image when they are a PDF's pages without a text layer (rendered to
    # PNG); empty for an image file. `meta["scanned_pages"]` lists the same numbers.
    image_pages: tuple[int, ...] = ()


def read_document(
    path: Path, data: bytes, limits: ReadLimits, *, waiting: Callable[[], AbstractContextManager[Any]] = nullcontext
) -> Document:
    """Text of `data` (read from `path`); `SkipRun` or `InputError` in one sentence otherwise.

    With `limits.scan_pages`, a PDF's pages without a text layer come back rendered as `images`
    with their `image_pages`, beside the text of the other pages (which may be empty).
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
    body, meta, scans = _text_of(kind, path, data, limits, waiting)
    if not body.strip() and not scans:
        raise SkipRun(_nothing(kind, path, meta))
    pages = tuple(meta.get("scanned_pages", ())) if scans else ()
    cut = len(body) > limits.max_chars
    if cut:
        meta, body = meta | {"chars": len(body)}, body[: limits.max_chars]
    return Document(body, kind.value, meta, truncated=cut, images=scans, image_pages=pages)


def _text_of(
    kind: Kind, path: Path, data: bytes, limits: ReadLimits, waiting: Callable[[], AbstractContextManager[Any]]
) -> tuple[str, dict[str, Any], tuple[bytes, ...]]:
    """Text, metadata and rendered scanned pages (PDF only) of a document."""
    if kind is Kind.TEXT:
        return (*text.plain(data), ())
    if kind is Kind.CSV:
        return (*text.table(data), ())
    if kind is Kind.JSON:
        return (*text.json_text(data), ())
    parser, args = {
        Kind.PDF: ("pdf", [limits.max_chars, limits.scan_pages, limits.scan_pixels, limits.scan_dpi]),
        Kind.DOCX: ("docx", [limits.max_chars, limits.max_unpacked]),
        Kind.HTML: ("html", []),
        Kind.EMAIL: ("email", []),
    }[kind]
    with waiting():
        outcome, value = sandbox.SANDBOX.run(parser, data, args, seconds=limits.seconds, memory_mb=limits.memory_mb)
    if outcome == sandbox.Outcome.OK:
        scans = tuple(base64.b64decode(image) for image in value[2]) if len(value) > 2 else ()
        return value[0], value[1], scans
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
        failed = f"; rendering its pages failed ({meta['scan_error']})" if meta.get("scan_error") else ""
        pages = count(pages, "page") if isinstance(pages, int) else "its pages"
        return f"{path.name} has no text layer ({pages}, a scan?){failed}; nothing to send to the model"
    return f"{path.name} contains no text; nothing to send to the model"

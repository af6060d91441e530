"""Turning a document's bytes into the text the model reads."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.errors import InputError, SkipRun

_BINARY_SAMPLE = 8192


@dataclass(frozen=True)
class Extracted:
    """The text of a document and what else was learnt reading it."""

    text: str
    kind: str
    meta: dict[str, Any] = field(default_factory=dict)
    truncated: bool = False


def extract(path: Path, data: bytes, *, max_chars: int) -> Extracted:
    """Text of `data` (read from `path`), by content first and by name second."""
    if data.startswith(b"%PDF-"):
        result = _pdf(data, path)
    elif b"\x00" in data[:_BINARY_SAMPLE]:
        raise SkipRun(f"{path.name} is a binary file, not text; nothing to read")
    else:
        result = Extracted(_decode(data), "text")
    if len(result.text) > max_chars:
        return Extracted(result.text[:max_chars], result.kind, result.meta, truncated=True)
    return result


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig",):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            pass
    return data.decode("utf-8", errors="replace")


def _pdf(data: bytes, path: Path) -> Extracted:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PyPdfError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path.name} is not a readable PDF ({exc})") from exc
    text = "\n\n".join(p.strip() for p in pages).strip()
    if not text:
        raise SkipRun(f"{path.name} has no text layer (a scan?); nothing to send to the model")
    title = (reader.metadata or {}).get("/Title") if reader.metadata else None
    return Extracted(text, "pdf", {"pages": len(pages), "title": title})

"""PDF text with pypdf: pages, title, author. Runs inside the sandbox."""

from __future__ import annotations

import io
from typing import Any


def read(data: bytes, max_chars: int) -> tuple[str, dict[str, Any]]:
    """Text of every page (stopping once `max_chars` are collected) and the metadata."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        try:
            reader.decrypt("")
        except Exception as exc:  # pypdf raises several types for a wrong password
            raise ValueError("it is encrypted with a password") from exc
    pages, total, count = [], 0, len(reader.pages)
    for page in reader.pages:
        text = (page.extract_text() or "").strip()
        pages.append(text)
        total += len(text)
        if total > max_chars:
            break
    info = reader.metadata or {}
    meta = {"pages": count, "title": _str(info.get("/Title")), "author": _str(info.get("/Author"))}
    return "\n\n".join(p for p in pages if p), meta


def _str(value: Any) -> str | None:
    return str(value) if value else None

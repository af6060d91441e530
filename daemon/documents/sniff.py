"""Which kind of document some bytes are: by content first, by name second."""

from __future__ import annotations

import io
import zipfile
from enum import StrEnum
from pathlib import Path

_SAMPLE = 8192
_TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text", ".log", ".rst", ".org", ""}
# Control characters that text does not hold (tab, newlines, form feed and carriage return are text).
_CONTROLS = bytes(b for b in range(256) if b < 9 or 13 < b < 32 or b == 127)


class Kind(StrEnum):
    TEXT = "text"
    PDF = "pdf"
    DOCX = "docx"
    HTML = "html"
    EMAIL = "email"
    CSV = "csv"
    JSON = "json"
    IMAGE = "image"
    ZIP = "zip"
    BINARY = "binary"
    EMPTY = "empty"


def sniff(path: Path, data: bytes) -> Kind:
    """The kind of `data`; magic bytes win over the file name."""
    if not data.strip():
        return Kind.EMPTY
    head = data[:_SAMPLE]
    if head.lstrip()[:5] == b"%PDF-" or head.startswith(b"%PDF-"):
        return Kind.PDF
    if head.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")):
        return Kind.IMAGE
    if head.startswith(b"PK\x03\x04"):
        return Kind.DOCX if _is_docx(data) else Kind.ZIP
    if looks_binary(head):
        return Kind.BINARY
    return _by_text(path.suffix.lower(), head)


def looks_binary(head: bytes) -> bool:
    """NUL bytes, or many control characters, mean this is not text in any 8-bit encoding."""
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    controls = len(head) - len(head.translate(None, _CONTROLS))  # counted in C, not byte by byte
    return controls > len(head) // 10


def _by_text(suffix: str, head: bytes) -> Kind:
    lowered = head[:1024].lstrip().lower()
    if suffix in (".html", ".htm", ".xhtml") or lowered.startswith((b"<!doctype html", b"<html")):
        return Kind.HTML
    if suffix == ".eml" or (suffix not in _TEXT_SUFFIXES and _looks_like_mail(head)):
        return Kind.EMAIL
    if suffix in (".csv", ".tsv"):
        return Kind.CSV
    if suffix in (".json", ".jsonl", ".ndjson"):
        return Kind.JSON
    return Kind.TEXT


def _looks_like_mail(head: bytes) -> bool:
    first = head.split(b"\n\n", 1)[0].lower()
    return all(f"\n{name}:".encode() in b"\n" + first for name in ("from", "subject", "date"))


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "word/document.xml" in archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False

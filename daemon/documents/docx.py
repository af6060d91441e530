"""DOCX text from the package's XML with the stdlib: paragraphs, tables, title. Runs in the sandbox.

python-docx would add lxml for what is a walk over `w:p`/`w:t` elements; the stdlib suffices.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any
from xml.etree import ElementTree

_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_DC = "{http://purl.org/dc/elements/1.1/}"
BODY = "word/document.xml"


def read(data: bytes, max_chars: int, max_unpacked: int) -> tuple[str, dict[str, Any]]:
    """Paragraph text of the main document, refusing parts that unpack beyond `max_unpacked`."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        body = archive.getinfo(BODY)
        if body.file_size > max_unpacked:
            raise ValueError(f"its text part unpacks to {body.file_size} bytes (limit {max_unpacked}); a zip bomb?")
        with archive.open(body) as stream:
            text = _paragraphs(stream, max_chars)
        meta = _core(archive, max_unpacked)
    return text, meta


def _paragraphs(stream: Any, max_chars: int) -> str:
    paragraphs: list[str] = []
    parts: list[str] = []
    total = 0
    for _event, elem in ElementTree.iterparse(stream, events=("end",)):
        tag = elem.tag
        if tag == f"{_W}t" and elem.text:
            parts.append(elem.text)
        elif tag in (f"{_W}tab",):
            parts.append("\t")
        elif tag in (f"{_W}br", f"{_W}cr"):
            parts.append("\n")
        elif tag == f"{_W}p":
            paragraphs.append("".join(parts))
            total += len(paragraphs[-1]) + 1
            parts = []
            elem.clear()  # keep memory flat on long documents
            if total > max_chars:
                break
    return "\n".join(paragraphs).strip()


def _core(archive: zipfile.ZipFile, max_unpacked: int) -> dict[str, Any]:
    try:
        info = archive.getinfo("docProps/core.xml")
    except KeyError:
        return {}
    if info.file_size > min(max_unpacked, 1 << 20):
        return {}
    root = ElementTree.fromstring(archive.read(info))
    title, creator = root.find(f"{_DC}title"), root.find(f"{_DC}creator")
    return {
        "title": title.text if title is not None else None,
        "author": creator.text if creator is not None else None,
    }

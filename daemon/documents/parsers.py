"""Everything the sandbox children run, imported once by the fork server."""

from __future__ import annotations

from typing import Any

import PIL.Image  # noqa: F401  (preloaded so each child forks with them imported)
import pypdf  # noqa: F401
import pypdfium2  # noqa: F401

from daemon.documents import docx, html, mail, pdf
from daemon.documents.text import decode


def pdf_text(
    data: bytes, max_chars: int, scan_pages: int = 0, scan_pixels: int = 0, scan_dpi: int = 150
) -> tuple[str, dict[str, Any], list[str]]:
    return pdf.read(data, max_chars, scan_pages, scan_pixels, scan_dpi)


def docx_text(data: bytes, max_chars: int, max_unpacked: int) -> tuple[str, dict[str, Any]]:
    return docx.read(data, max_chars, max_unpacked)


def html_text(data: bytes) -> tuple[str, dict[str, Any]]:
    markup, encoding = decode(data)
    text, meta = html.main_text(markup)
    return text, meta | {"encoding": encoding}


def email_text(data: bytes) -> tuple[str, dict[str, Any]]:
    return mail.read(data)


PARSERS = {"pdf": pdf_text, "docx": docx_text, "html": html_text, "email": email_text}

"""PDF text with pypdf (pages, title, author); pages without a text layer rendered by pypdfium2. In the sandbox."""

from __future__ import annotations

import base64
import io
import math
from typing import Any


def read(
    data: bytes, max_chars: int, scan_pages: int = 0, scan_pixels: int = 4_000_000, scan_dpi: int = 150
) -> tuple[str, dict[str, Any], list[str]]:
    """Text of every page (stopping once `max_chars` are collected), the metadata, and scanned pages.

    Up to `scan_pages` pages without a text layer are rendered to PNG (base64, for the JSON answer
    of the sandbox) at `scan_dpi`, or smaller to stay within `scan_pixels`; `meta["scanned_pages"]`
    lists their page numbers (1-based), `scanned_pages_left_out` counts those over the limit.
    """
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        try:
            reader.decrypt("")
        except Exception as exc:  # pypdf raises several types for a wrong password
            raise ValueError("it is encrypted with a password") from exc
    pages, blank, total, count = [], [], 0, len(reader.pages)
    for number, page in enumerate(reader.pages, 1):
        text = (page.extract_text() or "").strip()
        pages.append(text)
        if not text:
            blank.append(number)
        total += len(text)
        if total > max_chars:
            break
    info = reader.metadata or {}
    meta = {"pages": count, "title": _str(info.get("/Title")), "author": _str(info.get("/Author"))}
    images: list[str] = []
    if scan_pages and blank:
        images, meta = _scans(data, blank, scan_pages, scan_pixels, scan_dpi, meta)
    return "\n\n".join(p for p in pages if p), meta, images


def _scans(
    data: bytes, blank: list[int], limit: int, max_pixels: int, dpi: int, meta: dict[str, Any]
) -> tuple[list[str], dict[str, Any]]:
    chosen = blank[:limit]
    try:
        images = render_pages(data, chosen, max_pixels=max_pixels, dpi=dpi)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 (pdfium refused what pypdf read: the text stands, the reason is kept)
        return [], meta | {"scan_error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}"}
    left_out = len(blank) - len(chosen)
    return images, meta | {"scanned_pages": chosen} | ({"scanned_pages_left_out": left_out} if left_out else {})


def render_pages(data: bytes, numbers: list[int], *, max_pixels: int, dpi: int) -> list[str]:
    """PNGs (base64) of the pages `numbers` (1-based), each at `dpi` or smaller to stay within `max_pixels`."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(data)
    try:
        out = []
        for number in numbers:
            page = document[number - 1]
            width, height = page.get_size()  # points, 1/72 inch
            scale = min(dpi / 72, math.sqrt(max_pixels / max(width * height, 1.0)))
            image = page.render(scale=scale).to_pil()
            buffer = io.BytesIO()
            image.save(buffer, "PNG", optimize=False)
            out.append(base64.b64encode(buffer.getvalue()).decode("ascii"))
            page.close()
        return out
    finally:
        document.close()


def _str(value: Any) -> str | None:
    return str(value) if value else None

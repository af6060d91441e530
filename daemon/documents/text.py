"""Plain text, Markdown, CSV and JSON: decoding with a detected encoding, invalid bytes replaced."""

from __future__ import annotations

import csv
import io
from typing import Any

_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def decode(data: bytes) -> tuple[str, str]:
    """The text of `data` and the encoding used; never raises."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace"), encoding
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    # Only text that is not UTF-8 pays for detection; most files never get here.
    from charset_normalizer import from_bytes

    best = from_bytes(data[:65536]).best()
    encoding = best.encoding if best is not None else "cp1252"
    try:
        return data.decode(encoding, errors="replace"), encoding
    except LookupError:
        return data.decode("cp1252", errors="replace"), "cp1252"


def plain(data: bytes) -> tuple[str, dict[str, Any]]:
    """Text and Markdown."""
    text, encoding = decode(data)
    return text, {"encoding": encoding}


def table(data: bytes) -> tuple[str, dict[str, Any]]:
    """CSV as its own text, with the header and the number of rows as metadata."""
    text, encoding = decode(data)
    meta: dict[str, Any] = {"encoding": encoding}
    try:
        dialect = csv.Sniffer().sniff(text[:4096])
        rows = csv.reader(io.StringIO(text[:200_000]), dialect)
        meta["columns"] = next(rows, [])
        meta["rows"] = sum(1 for _ in rows)
    except csv.Error:
        pass
    return text, meta


def json_text(data: bytes) -> tuple[str, dict[str, Any]]:
    """JSON as its own text; whether it parses is metadata, not a reason to refuse."""
    import json

    text, encoding = decode(data)
    try:
        json.loads(text)
        valid = True
    except ValueError:
        valid = False
    return text, {"encoding": encoding, "valid_json": valid}

"""What full-text search sees of a run: its file name's words and the words of its outputs.

The store writes both columns in the same statement as the values they come from; PostgreSQL's GIN
index follows in the same transaction, SQLite's FTS5 index in batches (store/searchindex.py). The
run's `error` column is indexed as it is.
"""

from __future__ import annotations

import os
import re
from typing import Any

from daemon.files.lossless import printable

MAX_CHARS = 20_000  # of outputs' text per run: summaries and fields, not whole documents

_WORD_SEPARATORS = re.compile(r"[\W_]+")
# Numbers and decisions that no one searches for, and digests that are not words.
_SKIPPED_KEYS = frozenset({"confidence", "split", "sha256", "chars", "action", "intent", "attempt"})
_PATH_KEYS = frozenset({"destination", "path"})


def name_words(input_path: str | None) -> str | None:
    """The words of the file's name: `acme_invoice-2026.pdf` → `acme invoice 2026 pdf`."""
    if not input_path:
        return None
    words = _WORD_SEPARATORS.sub(" ", os.path.basename(input_path.rstrip("/"))).strip()
    return words or None


def output_words(outputs: dict[str, Any] | None) -> str | None:
    """Summaries, labels, extracted fields, reasons and where the file went; never digests."""
    parts: list[str] = []
    for step_id, output in (outputs or {}).items():
        if not step_id.startswith("_"):  # "_split" and the like are bookkeeping
            _collect(output, parts, key=None)
    text = printable(" ".join(parts))[:MAX_CHARS].strip()  # a file name that is not UTF-8: U+FFFD, storable
    return text or None


def _collect(value: Any, parts: list[str], *, key: str | None) -> None:
    if key in _SKIPPED_KEYS or _is_digest(value) or isinstance(value, bool) or value is None:
        return
    if isinstance(value, dict):
        for inner_key, inner in value.items():
            _collect(inner, parts, key=str(inner_key))
    elif isinstance(value, list):
        for item in value:
            _collect(item, parts, key=key)
    elif isinstance(value, str) and key in _PATH_KEYS:
        folder, name = os.path.split(value.rstrip("/"))
        parts.append(f"{os.path.basename(folder)} {name}")  # the folder it went to, not the whole tree
    elif isinstance(value, str | int | float):
        parts.append(str(value))


def _is_digest(value: Any) -> bool:
    """`record: metadata` replaces texts by `{"sha256": …, "chars": …}`: nothing to find there."""
    return isinstance(value, dict) and set(value) == {"sha256", "chars"}

"""Words in messages: counted nouns ("1 file", never "1 files"), figures, and names that stay on one line."""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, the Unicode line and paragraph separators, and lone surrogates (the
# undecodable bytes of a non-UTF-8 file name): each would split a line or break its encoding.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`n` and the noun in the number that fits it: count(1, "run") == "1 run", count(2, "run") == "2 runs"."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def percent(share: float | None) -> str:
    """0.9167 as 91.7 %; a missing figure as a dash (the CLI's tables and the dashboard alike)."""
    return "—" if share is None else f"{share * 100:.1f} %"


def millis(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def one_line(text: str) -> str:
    """`text` with control characters escaped as Python writes them (`\\n`, `\\x1b`, `\\udcff`)."""
    return _UNPRINTABLE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"

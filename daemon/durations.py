"""Parsing the short durations users write in workflow files: `30s`, `15m`, `2h`, `7d`, `1w`."""

from __future__ import annotations

import re
from datetime import timedelta

UNIT_SECONDS: dict[str, int] = {
    "s": 1, "sec": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}  # fmt: skip

_PART = re.compile(r"(\d+)\s*([a-z]+)")
_WHOLE = re.compile(r"(?:\d+\s*[a-z]+\s*)+")
_HINT = "write a whole number and a unit such as 30s, 15m, 2h, 7d or 1w"


def parse_duration(value: str | int | timedelta) -> timedelta:
    """A positive duration from `30s`, `15m`, `2h`, `1d`, `1w` or `1h30m`, from seconds, or a timedelta."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str):
        seconds = _parse_text(value)
    else:
        raise ValueError(f"a duration must be text such as '15m', not {type(value).__name__}")
    if seconds <= 0:
        raise ValueError(f"the duration {value!r} must be longer than zero")
    return timedelta(seconds=seconds)


def _parse_text(text: str) -> int:
    cleaned = text.strip().lower()
    if cleaned.isdigit():
        return int(cleaned)
    if not _WHOLE.fullmatch(cleaned):
        raise ValueError(f"'{text}' is not a duration; {_HINT}")
    total = 0
    for number, unit in _PART.findall(cleaned):
        if unit not in UNIT_SECONDS:
            raise ValueError(f"'{text}' has an unknown unit '{unit}'; {_HINT}")
        total += int(number) * UNIT_SECONDS[unit]
    return total

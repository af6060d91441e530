"""Crontab expressions → APScheduler CronTriggers over wall-clock time, with crontab's own meaning.

APScheduler 3 numbers weekdays from Monday (0) and ANDs day-of-month with day-of-week; crontab
numbers them from Sunday (0 and 7) and fires when either restricted day field matches.
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING

from daemon.errors import GristmillError
from daemon.words import count

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FULL_NAMES = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


class CronError(GristmillError):
    """A cron expression that crontab would not accept."""

    def __init__(self, expression: str, reason: str) -> None:
        super().__init__(f"the cron expression '{expression}' is invalid: {reason}")
        self.expression, self.reason = expression, reason


def wall_triggers(expression: str) -> list[CronTrigger]:
    """Triggers whose fire times, read in UTC, are the expression's wall-clock times (any one fires)."""
    from apscheduler.triggers.cron import CronTrigger  # here: a start without cron schedules does without APScheduler

    fields = expression.split()
    if len(fields) not in (5, 6):
        raise CronError(expression, f"it has {count(len(fields), 'field')}, not 5 (or 6 with seconds first)")
    second, minute, hour, dom, month, dow = fields if len(fields) == 6 else ["0", *fields]
    base = {"second": second, "minute": minute, "hour": hour, "month": month, "timezone": UTC}
    try:
        days = weekdays(dow)
        # crontab: when both day fields are restricted, a time matching either one fires.
        if not _starred(dom) and not _starred(dow):
            return [CronTrigger(day=dom, **base), CronTrigger(day_of_week=days, **base)]
        return [CronTrigger(day=dom.replace("?", "*"), day_of_week=days, **base)]
    except ValueError as exc:
        raise CronError(expression, str(exc)) from exc


def weekdays(field: str) -> str:
    """A crontab day-of-week field (0 and 7 = Sunday, names allowed) as APScheduler day names."""
    if _starred(field) and "/" not in field:
        return "*"
    chosen: set[int] = set()
    for part in field.lower().split(","):
        chosen |= _weekday_part(part)
    return ",".join(DAY_NAMES[d] for d in sorted(chosen))


def _weekday_part(part: str) -> set[int]:
    span, _, step_text = part.partition("/")
    step = _number(step_text, "step") if step_text else 1
    if step < 1:
        raise ValueError(f"the step in '{part}' must be at least 1")
    if span in ("*", "?"):
        first, last = 0, 6
    elif "-" in span:
        low, high = span.split("-", 1)
        first, last = _day(low), _day(high)
        if last == 0 and first > 0:
            last = 7  # "5-0" or "5-7": Friday to Sunday
    else:
        first = _day(span)
        last = 6 if step_text else first
    if first > last:
        raise ValueError(f"the weekday range '{span}' runs backwards")
    return {d % 7 for d in range(first, last + 1, step)}


def _day(text: str) -> int:
    if text in DAY_NAMES or text in _FULL_NAMES:
        return DAY_NAMES.index(text) if text in DAY_NAMES else _FULL_NAMES.index(text)
    value = _number(text, "weekday")
    if not 0 <= value <= 7:
        raise ValueError(f"the weekday {value} is not between 0 and 7 (0 and 7 are Sunday)")
    return value


def _number(text: str, what: str) -> int:
    if not text.isdigit():
        raise ValueError(f"'{text}' is not a {what}")
    return int(text)


def _starred(field: str) -> bool:
    return field.startswith(("*", "?"))

"""APScheduler's side of the schedule: the alarm clock and the trigger that wakes it at our ticks.

Its own module so that APScheduler is imported only when a workflow has a schedule (about 20 ms of
start-up otherwise; `tests/test_startup_imports.py`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from daemon.schedule.ticks import Ticks

JOB_DEFAULTS = {"misfire_grace_time": None, "coalesce": True, "max_instances": 1}


class TickTrigger(BaseTrigger):
    """An APScheduler trigger that fires at our ticks (DST-correct, crontab weekdays)."""

    def __init__(self, ticks: Ticks) -> None:
        self.ticks = ticks

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        return self.ticks.next_after(previous_fire_time or now)

    def __str__(self) -> str:
        return f"ticks {self.ticks}"


def alarm_clock() -> BackgroundScheduler:
    """A scheduler with its defaults set on purpose (see `daemon/schedule/scheduler.py`), not started."""
    return BackgroundScheduler(
        jobstores={"default": MemoryJobStore()},
        executors={"default": ThreadPoolExecutor(2)},
        job_defaults=JOB_DEFAULTS,
        timezone=UTC,
    )

"""Tick arithmetic: when a schedule fires, as aware UTC instants, with no clock of its own.

A cron schedule is read on the wall clock of its time zone: a wall-clock time that a DST change
repeats fires once (its first occurrence); one that the change skips fires at the first instant
after the gap. An `every` schedule counts real seconds from 1970-01-01 UTC, so its ticks are the
same instants in every process and after every restart.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import tzlocal

from daemon.schedule.cron import wall_triggers

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_COUNT = 10_000  # ticks counted one by one before "more than" is said instead


def local_zone() -> tzinfo:
    """The machine's time zone."""
    return tzlocal.get_localzone()


def zone_of(name: str | None) -> tzinfo:
    """The named time zone, or the machine's."""
    return ZoneInfo(name) if name else local_zone()


def tick_key(tick: datetime) -> str:
    """The stable identity of a tick, stored as the run's dedupe key."""
    return "tick:" + tick.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Ticks(ABC):
    """The instants a schedule fires at."""

    @abstractmethod
    def next_after(self, after: datetime) -> datetime:
        """The first tick strictly after `after` (aware)."""

    def latest_until(self, upto: datetime, *, since: datetime) -> datetime | None:
        """The last tick in (since, upto], or None."""
        reach = timedelta(seconds=1)
        while True:
            start = max(since, upto - reach)
            found = None
            tick = self.next_after(start)
            while tick <= upto:
                found, tick = tick, self.next_after(tick)
            if found is not None or start == since:
                return found
            reach *= 4

    def between(self, since: datetime, upto: datetime, limit: int = MAX_COUNT) -> list[datetime]:
        """The ticks in (since, upto], at most `limit` of them (the earliest)."""
        found: list[datetime] = []
        tick = self.next_after(since)
        while tick <= upto and len(found) < limit:
            found.append(tick)
            tick = self.next_after(tick)
        return found


@dataclass(frozen=True)
class EveryTicks(Ticks):
    """Every `interval`, counted from the epoch."""

    interval: timedelta

    def next_after(self, after: datetime) -> datetime:
        return EPOCH + ((after - EPOCH) // self.interval + 1) * self.interval


@dataclass(frozen=True)
class CronTicks(Ticks):
    """A crontab expression read on the wall clock of `zone`."""

    expression: str
    zone: tzinfo
    _triggers: list = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_triggers", wall_triggers(self.expression))

    def next_after(self, after: datetime) -> datetime:
        wall = after.astimezone(self.zone).replace(tzinfo=None, fold=0)
        while True:
            wall = self._next_wall(wall)
            instant = self._instant(wall)
            # In the second pass of a repeated hour, wall times map to the first pass: passed.
            if instant > after:
                return instant

    def _next_wall(self, wall: datetime) -> datetime:
        as_utc = wall.replace(tzinfo=UTC)
        fires = (t.get_next_fire_time(as_utc, as_utc) for t in self._triggers)
        found = min((f for f in fires if f is not None), default=None)
        if found is None:
            raise ValueError(f"the cron expression '{self.expression}' never fires")
        return found.replace(tzinfo=None)

    def _instant(self, wall: datetime) -> datetime:
        """The instant a wall-clock time fires: its first occurrence, or the end of a DST gap."""
        first = wall.replace(tzinfo=self.zone, fold=0)
        if first.astimezone(UTC).astimezone(self.zone).replace(tzinfo=None) == wall:
            return first.astimezone(UTC)
        return self._gap_end(wall)

    def _gap_end(self, wall: datetime) -> datetime:
        # fold=1 reads a skipped time with the offset after the change: an instant before the gap;
        # fold=0 with the offset before it: an instant after. The change lies between; bisect it.
        low = wall.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        high = wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        after_offset = high.astimezone(self.zone).utcoffset()
        while high - low > timedelta(seconds=1):
            middle = low + (high - low) / 2
            if middle.astimezone(self.zone).utcoffset() == after_offset:
                high = middle
            else:
                low = middle
        return high.replace(microsecond=0)


def ticks_for(cron: str | None, every: timedelta | None, zone: tzinfo) -> Ticks:
    """The ticks of a schedule given by `cron` or `every`."""
    if cron is not None:
        return CronTicks(cron, zone)
    assert every is not None
    return EveryTicks(every)

"""How far the queue has come: the runs that ended since a starting point, and what is still to do."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from daemon.domain import RunStatus
from daemon.errors import StoreError
from daemon.store import RunStore
from daemon.words import count

log = logging.getLogger("gristmill")


@dataclass(frozen=True)
class Progress:
    """Runs that ended since the start, by status, and the runs still queued or running."""

    ended: Mapping[RunStatus, int]
    queued: int
    running: int
    final: bool = False  # the last report of a pass (`run --once` has drained what it could)

    @property
    def done(self) -> int:
        return sum(self.ended.values())

    @property
    def total(self) -> int:
        return self.done + self.queued + self.running

    def outcomes(self) -> str:
        """`3 succeeded, 1 failed`, or `none yet`."""
        return ", ".join(f"{n} {status.value}" for status, n in self.ended.items() if n) or "none yet"

    def line(self) -> str:
        """One plain line: how many of how many runs are done, how they ended, what is left."""
        return (
            f"{self.done} of {count(self.total, 'run')} done ({self.outcomes()}); "
            f"{self.queued} queued, {self.running} running"
        )


class ProgressMeter:
    """Reads the runs that ended since the moment it was made, and the queue as it is now.

    Both counts read indexes of the recent and the waiting runs only: a count of every run in every
    status walked the whole history (85 ms at a million runs) at each look.
    """

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.since = store.now()

    def read(self, *, final: bool = False) -> Progress:
        ended = self.store.ended_since(self.since)
        waiting = self.store.in_queue()
        return Progress(ended, waiting[RunStatus.QUEUED], waiting[RunStatus.RUNNING], final)


class BacklogLog:
    """The daemon's progress through a backlog: a log line every `every` seconds while there is work."""

    def __init__(self, store: RunStore, every: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.every, self.clock = store, every, clock
        self._meter: ProgressMeter | None = None  # made at the first tick: the database may be away now
        self._next = clock()

    def due_in(self) -> float:
        """Seconds until the next line may be due (a long time when switched off)."""
        return max(0.0, self._next - self.clock()) if self.every > 0 else 3600.0

    def tick(self) -> None:
        """When due: log what ended since the last line and what is left, if anything happened or waits."""
        if self.every <= 0 or self.clock() < self._next:
            return
        self._next = self.clock() + self.every
        try:
            progress = self._meter.read() if self._meter is not None else None
            meter = ProgressMeter(self.store)
        except StoreError:  # the database is away (said once elsewhere): no line this time
            return
        self._meter = meter
        if progress is not None and (progress.done or progress.queued or progress.running):
            log.info(
                "progress: %s ended in the last %.0fs (%s); %d queued, %d running",
                count(progress.done, "run"),
                self.every,
                progress.outcomes(),
                progress.queued,
                progress.running,
            )

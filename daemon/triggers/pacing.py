"""How fast a scan queues a large backlog: as fast as the workers take its runs, no faster.

A scan of 100,000 files queued at full speed took the CPU and the store's write lock from the
workers for a minute, and the first runs came at half their pace (BENCHMARKS.md, the backlog).
Paced, it keeps a few batches queued ahead of the workers and waits for them before the next one;
the rest of the folder waits in its order, oldest first. The count is the store's, so the workers
of every node sharing a PostgreSQL database count, not only this process's. An intake node (no
workers of its own to compete with) is not paced: see `WatchKind.source` (watch_trigger.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from daemon.domain import Run, RunStatus
from daemon.errors import StoreError
from daemon.triggers.handover import QUEUE_BATCH

PACE_AHEAD = 2 * QUEUE_BATCH  # a scan's next batch waits while more of its runs than this are queued
PACE_POLL = 0.1  # seconds between looks at the queue while a scan waits: 512 runs last seconds at 200 a second


class Pacer:
    """Holds a scan's next batch back while more than `ahead` of the runs it queued are still queued.

    `queued_from(run_id)` is the store's count of the runs from that id on that are still queued;
    `stop` ends a wait at once. The scan notes each run its batches queued or found queued (`saw`).
    """

    def __init__(
        self,
        queued_from: Callable[[int], int],
        stop: threading.Event,
        *,
        ahead: int = PACE_AHEAD,
        every: float = PACE_POLL,
    ) -> None:
        self.queued_from, self.stop, self.ahead, self.every = queued_from, stop, ahead, every
        self.first: int | None = None  # the lowest id of a queued run of this scan
        self.waits = 0  # looks at the queue that found it too full (for logs and tests)

    def saw(self, run: Run) -> None:
        """Note a run a batch of the scan queued, or found already queued (from before a restart)."""
        if run.status is RunStatus.QUEUED and (self.first is None or run.id < self.first):
            self.first = run.id

    def wait(self) -> bool:
        """Wait until at most `ahead` of the scan's runs are queued; False when stopped first."""
        while self.first is not None and not self.stop.is_set():
            try:
                if self.queued_from(self.first) <= self.ahead:
                    return True
            except StoreError:
                pass  # the database is away (intake and the workers say so): look again in a while
            self.waits += 1
            self.stop.wait(self.every)
        return not self.stop.is_set()

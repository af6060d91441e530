"""Whether the workers beyond the model's slots take runs: only while the daemon is not busy on its own.

The pool has a worker or more beyond the model's slots (`app.workers_for`), so that a slot does not
stand idle while its worker files and records a run: with a model that answers in 200 ms they keep
the slots 0.98 busy. They help only while the workers mostly wait, on the model, a slow disk or a
mail server. When the daemon's own work keeps it busy (a model that answers at once), the one
interpreter lock already runs as fast as it can: another thread adds no runs, only more passing of
that lock between threads (the overhead scenario with two workers instead of three, in turn: 4.11
against 5.26 ms of CPU a run, 216 against 168 runs a second; BENCHMARKS.md "Issue 17, eighth
round"). So the spares stand aside while the process used, over the last second, at least three
quarters of a CPU: with an instant model it uses about 0.9, with a 200 ms one about 0.1.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

BUSY = 0.75  # CPU seconds a second: from there on the process is as busy as its interpreter lock lets it be
WINDOW = 1.0  # seconds over which the process's CPU is measured; also how often a spare standing aside looks


class Spares:
    """`count` spare workers and whether they are wanted now; thread-safe.

    `clock` and `cpu` (wall and process CPU seconds) are injectable for tests.
    """

    def __init__(
        self,
        count: int,
        *,
        busy: float = BUSY,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
        cpu: Callable[[], float] = time.process_time,
    ) -> None:
        self.count, self.busy, self.window, self.clock, self.cpu = count, busy, window, clock, cpu
        self._lock = threading.Lock()
        self._since = (clock(), cpu())
        self._wanted = True  # until a window says otherwise: as many workers as before

    def wanted(self) -> bool:
        """Whether the spares take runs: the process used under `busy` CPU in the last full window."""
        now, used = self.clock(), self.cpu()
        with self._lock:
            began, used_before = self._since
            if now - began >= self.window:
                self._wanted = used - used_before < self.busy * (now - began)
                self._since = (now, used)
            return self._wanted

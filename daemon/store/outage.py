"""A database that failed under the workers: wait with backoff, look again, say so once each way."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from daemon.errors import StoreError

log = logging.getLogger("gristmill")


class StoreOutage:
    """Shared by the workers of a pool: one log line when the store fails, one when it answers again.

    `probe` is any cheap read; it raising StoreError means the store is still away.
    """

    def __init__(self, probe: Callable[[], object], *, first: float = 0.5, longest: float = 10.0) -> None:
        self._probe, self._first, self._longest = probe, first, longest
        self._lock = threading.Lock()
        self._down = False

    @property
    def down(self) -> bool:
        return self._down

    def wait(self, exc: StoreError, bell: threading.Event, stopped: Callable[[], bool]) -> None:
        """Return once the store answers, or when `stopped()`; `bell` set cuts a wait short."""
        with self._lock:
            first, self._down = not self._down, True
        if first:
            log.warning("the run database failed: %s; the workers wait and try again", exc.message)
        delay = self._first
        while not stopped():
            bell.wait(delay)
            bell.clear()
            try:
                self._probe()
            except StoreError:
                delay = min(delay * 2, self._longest)
                continue
            with self._lock:
                back, self._down = self._down, False
            if back:
                log.info("the run database answers again; the workers go on")
            return

"""Tracks whether the model server is reachable and when to try it again."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable

log = logging.getLogger("gristmill")


class OutageGate:
    """Exponential backoff with jitter while the model server is away; one probe at a time.

    The first failure logs one line, the first success after it logs one line; nothing in between.
    """

    def __init__(
        self,
        *,
        base: float = 1.0,
        cap: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.base, self.cap, self.clock, self.jitter = base, cap, clock, jitter
        self._lock = threading.Lock()
        self._failures = 0
        self._retry_at = 0.0
        self._probing = False
        self.reason: str | None = None

    @property
    def is_down(self) -> bool:
        return self._failures > 0

    def down(self, reason: str) -> float:
        """Note a failure; return how long to wait before the next try."""
        with self._lock:
            if self._failures == 0:
                log.warning(
                    "the model server is unavailable: %s; runs stay queued and are retried with backoff", reason,
                    extra={"server": "local", "outcome": "unavailable"},
                )  # fmt: skip
            self._failures += 1
            delay = min(self.cap, self.base * 2 ** (self._failures - 1))
            delay = delay * (0.5 + self.jitter() / 2)
            self._retry_at = self.clock() + delay
            self._probing = False
            self.reason = reason
            return delay

    def up(self) -> None:
        """Note that the server answered."""
        with self._lock:
            if self._failures:
                log.warning("the model server is back after %d failed tries; resuming", self._failures,
                            extra={"server": "local", "outcome": "back"})
            self._failures, self._probing, self.reason = 0, False, None

    def may_call(self) -> tuple[bool, float]:
        """Whether this worker may go ahead now (as the only probe when down), else how long to wait."""
        with self._lock:
            if self._failures == 0:
                return True, 0.0
            wait = self._retry_at - self.clock()
            if wait > 0 or self._probing:
                return False, max(wait, 0.05)
            self._probing = True
            return True, 0.0

    def end_probe(self) -> None:
        """A probe found nothing to send; let another try later."""
        with self._lock:
            self._probing = False

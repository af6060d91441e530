"""Answer slots and a bounded wait queue, like Ollama's scheduler (OLLAMA_NUM_PARALLEL, OLLAMA_MAX_QUEUE)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from daemon.standin.config import StandinConfig


class SlotGate:
    """Answer slots and a bounded wait queue, like Ollama's scheduler; counts concurrency."""

    def __init__(self, config: Callable[[], StandinConfig]) -> None:
        self._config = config
        self._cond = threading.Condition()
        self.waiting = self.in_flight = self.max_in_flight = 0
        self.closed = False

    def acquire(self) -> bool:
        """Take a slot, waiting in the queue; False when the queue is full or we stop."""
        config = self._config()
        with self._cond:
            if self.in_flight >= max(1, config.slots) and self.waiting >= config.max_queue:
                return False
            self.waiting += 1
            try:
                # The timeout notices slots raised at runtime, which nobody notifies about.
                while self.in_flight >= max(1, config.slots) and not self.closed:
                    self._cond.wait(0.05)
            finally:
                self.waiting -= 1
            if self.closed:
                return False
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return True

    def release(self) -> None:
        """Give a slot back."""
        with self._cond:
            self.in_flight -= 1
            self._cond.notify()

    def reset_peak(self) -> None:
        """Start counting the peak concurrency afresh."""
        with self._cond:
            self.max_in_flight = self.in_flight

    def set_closed(self, closed: bool) -> None:
        """Refuse (or accept again) new work and wake every waiter."""
        with self._cond:
            self.closed = closed
            self._cond.notify_all()

"""Whether a model server is reachable and when to try it again; and what the worker pool asks of that.

`OutageGate` is one server's state (the router keeps one per server). `Gate` is what the worker
pool needs to know about all of them: whether a worker may go ahead and claim a run, and how long
a run whose model no server could take should wait.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger("gristmill")


class Gate(Protocol):
    """The outage state as the worker pool sees it."""

    @property
    def is_down(self) -> bool:
        """No model server is up."""
        ...

    @property
    def reason(self) -> str | None:
        """Why, in words, while something is down."""
        ...

    @property
    def cap(self) -> float:
        """The longest wait between tries (GRISTMILL_BACKOFF_MAX_SECONDS)."""
        ...

    def may_call(self) -> tuple[bool, float]:
        """Whether a worker may claim a run now (as the only probe when everything is down), else how long to wait."""
        ...

    def down(self, reason: str, retry_after: float | None = None) -> float:
        """A run could not reach a server: how long it waits before its next try."""
        ...

    def up(self) -> None:
        """A run got its answers (or needed none)."""
        ...

    def end_probe(self) -> None:
        """A run ended without telling anything about the servers."""
        ...


class OutageGate:
    """Exponential backoff with jitter while one model server is away; one probe at a time.

    The first failure logs one line, the first success after it logs one line; nothing in between.
    """

    def __init__(
        self,
        *,
        base: float = 1.0,
        cap: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
        name: str = "",
        url: str = "",
    ) -> None:
        self.base, self.cap, self.clock, self.jitter = base, cap, clock, jitter
        self.name, self.url = name, url
        self._lock = threading.Lock()
        self._failures = 0
        self._retry_at = 0.0
        self._probing = False
        self.reason: str | None = None

    @property
    def is_down(self) -> bool:
        return self._failures > 0

    def down(self, reason: str, retry_after: float | None = None) -> float:
        """Note a failure; return how long to wait before the next try."""
        with self._lock:
            if self._failures == 0:
                log.warning(
                    "model server '%s' unavailable: %s; its calls go to another server that has the model or wait, "
                    "and it is tried again with backoff", self.name, reason,
                    extra={"server": self.name, "outcome": "unavailable"},
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
                log.warning(
                    "the model server is back: '%s' at %s answered after %d failed tries; resuming",
                    self.name, self.url, self._failures, extra={"server": self.name, "outcome": "back"},
                )  # fmt: skip
            self._failures, self._probing, self.reason = 0, False, None

    def peek(self) -> float:
        """Seconds until a call may go to this server: 0 when up or when a probe is due and nobody probes."""
        with self._lock:
            if self._failures == 0:
                return 0.0
            if self._probing:
                return max(self._retry_at - self.clock(), self.base)
            return max(0.0, self._retry_at - self.clock())

    def may_call(self) -> tuple[bool, float]:
        """Whether a call may go ahead now (as the only probe when down), else how long to wait."""
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

"""The watchdog's health check: the parts that do the work are alive and the database answers."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from daemon.notify import Notifier

log = logging.getLogger("gristmill")

Check = Callable[[], bool]


@dataclass
class Health:
    """Named checks; systemd's watchdog is fed only while every one of them passes."""

    checks: Mapping[str, Check]

    def problems(self) -> list[str]:
        """The names of the checks that fail (an exception counts as a failure, with its text)."""
        failed = []
        for name, check in self.checks.items():
            try:
                ok = check()
            except Exception as exc:  # a check that raises is a failed check, never a crash
                failed.append(f"{name} ({type(exc).__name__}: {exc})")
                continue
            if not ok:
                failed.append(name)
        return failed


class HealthLog:
    """Logs when health changes, not every time it is looked at."""

    def __init__(self) -> None:
        self._last: list[str] = []

    def note(self, problems: list[str]) -> None:
        if problems and problems != self._last:
            log.error("unhealthy: %s (under systemd its watchdog is no longer fed)", ", ".join(problems))
        elif not problems and self._last:
            log.warning("healthy again")
        self._last = problems


class Watchdog:
    """Checks health on a timer and logs its changes, under systemd or not; feeds systemd's watchdog
    (only while healthy) and refreshes the STATUS line when there is a systemd to tell."""

    STATUS_EVERY = 30.0  # seconds between checks when systemd set no watchdog and `every` says nothing

    def __init__(
        self,
        notifier: Notifier,
        health: Health,
        *,
        usec: int | None,
        status: Callable[[], str],
        every: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.notifier, self.health, self.status, self.clock = notifier, health, status, clock
        # systemd asks for a ping at least every WATCHDOG_USEC; half of it leaves room for a slow check.
        self.interval = min(usec / 2_000_000 if usec else self.STATUS_EVERY, every or self.STATUS_EVERY)
        self.enabled = bool(usec) and notifier.enabled
        self._log = HealthLog()
        self._next = clock()

    def due_in(self) -> float:
        """Seconds until the next tick is due."""
        return max(0.0, self._next - self.clock())

    def tick(self) -> None:
        """When due: check health, ping the watchdog if healthy, and send the current status."""
        if self.clock() < self._next:
            return
        self._next = self.clock() + self.interval
        problems = self.health.problems()
        self._log.note(problems)
        if not self.notifier.enabled:
            return
        if problems:
            self.notifier.status("unhealthy: " + ", ".join(problems))
            return
        if self.enabled:
            self.notifier.watchdog()
        self.notifier.status(self.status())

"""Outages of what the workers write to: the run database, and the folders runs file into.

Like the model server (`outage.py`), each is an outage, not a failure of the run: the work waits
with exponential backoff, uses up no attempt, says so once when the trouble starts and once when
it is over, and goes on by itself. Only a database that cannot come back (deleted, replaced,
corrupt: `StoreError.fatal`) is not waited for.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from daemon.errors import StoreError

log = logging.getLogger("gristmill")

T = TypeVar("T")


def backoff(failures: int, base: float, cap: float, jitter: Callable[[], float] = random.random) -> float:
    """Seconds to wait after `failures` failures in a row: doubling from `base`, at most `cap`, jittered."""
    return min(cap, base * 2 ** max(0, failures - 1)) * (0.5 + jitter() / 2)


class StoreOutage:
    """Shared by the workers and the heartbeat: the run database failed, and when it works again.

    "Back" is said when a real operation succeeds, not a probe: a full disk may take a small write
    and refuse the next, and that must not read as an outage ending and starting again.
    """

    def __init__(self, *, base: float = 0.5, cap: float = 30.0, jitter: Callable[[], float] = random.random) -> None:
        self.base, self.cap, self.jitter = base, cap, jitter
        self._lock = threading.Lock()
        self._failures = 0
        self.reason: str | None = None

    @property
    def is_down(self) -> bool:
        return self._failures > 0

    def failed(self, exc: StoreError) -> float:
        """Note a failed store operation; how long to wait before the next try."""
        with self._lock:
            if self._failures == 0:
                log.error("the run database failed: %s; runs wait and are not lost, gristmill tries again", exc)
            self._failures += 1
            self.reason = exc.message
            return backoff(self._failures, self.base, self.cap, self.jitter)

    def ok(self) -> None:
        """A store operation that wrote succeeded (a read proves nothing: a full disk still reads)."""
        if self._failures == 0:  # the common case, without the lock
            return
        with self._lock:
            if self._failures:
                log.warning("the run database works again after %d failed tries; going on", self._failures)
            self._failures, self.reason = 0, None

    def call(self, op: Callable[[], T], stopping: threading.Event) -> T:
        """`op()`, tried again with backoff while the store fails; the StoreError when fatal or stopping."""
        while True:
            try:
                result = op()
            except StoreError as exc:
                if exc.fatal or stopping.wait(self.failed(exc)):
                    raise
                continue
            self.ok()
            return result


class FolderOutages:
    """Destination folders that cannot take a file now (disk full, quota, read-only file system).

    Each folder has its own backoff; a run that waits on a folder and then succeeds brings it back.
    """

    def __init__(self, *, base: float = 1.0, cap: float = 60.0, jitter: Callable[[], float] = random.random) -> None:
        self.base, self.cap, self.jitter = base, cap, jitter
        self._lock = threading.Lock()
        self._failures: dict[Path, int] = {}
        self._waiting: dict[int, Path] = {}  # run id → the folder it waits on

    def down(self, folder: Path, reason: str, run_id: int) -> float:
        """Run `run_id` could not file into `folder`; how long it waits before trying again."""
        with self._lock:
            failures = self._failures.get(folder, 0) + 1
            self._failures[folder] = failures
            self._waiting[run_id] = folder
            if failures == 1:
                log.error("%s; runs that file there wait and are tried again, using up no attempt", reason)
            return backoff(failures, self.base, self.cap, self.jitter)

    def succeeded(self, run_id: int) -> None:
        """Run `run_id` finished: a folder it waited on takes files again."""
        if not self._waiting:  # the common case, without the lock
            return
        with self._lock:
            folder = self._waiting.pop(run_id, None)
            if folder is None or self._failures.pop(folder, 0) == 0:
                return
            log.warning("the folder %s takes files again; runs that waited on it go on", folder)

    def down_now(self) -> list[Path]:
        """The folders that are out now (for the health log)."""
        with self._lock:
            return sorted(self._failures)

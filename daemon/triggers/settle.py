"""Knowing when a file is fully written: size and mtime unchanged for a while."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass
class _Pending:
    signature: tuple[int, int] | None
    stable_since: float
    settle: float


class SettleTracker:
    """Files seen recently, and which of them have stopped changing. Not thread-safe; one owner."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._pending: dict[Path, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def touch(self, path: Path, settle: float, *, wait: float | None = None) -> None:
        """An event about `path`: ready once unchanged for `wait` (default `settle`).

        A shorter `wait` is the fast path (closed after writing, renamed in); any later change
        restarts the full `settle` wait.
        """
        now = self.clock()
        wait = settle if wait is None else min(wait, settle)
        self._pending[path] = _Pending(_signature(path), now - (settle - wait), settle)

    def again_in(self, path: Path, seconds: float, settle: float) -> None:
        """Offer `path` again in `seconds` (a change meanwhile restarts the full `settle` wait)."""
        self._pending[path] = _Pending(_signature(path), self.clock() + seconds - settle, settle)

    def ready(self) -> list[Path]:
        """Paths unchanged for their settle time, removed from the tracker; vanished ones dropped."""
        now, done = self.clock(), []
        for path, pending in list(self._pending.items()):
            if now - pending.stable_since < pending.settle:
                continue  # not due: looked at when due (a change seen then restarts the wait from then)
            signature = _signature(path)
            if signature is None:
                del self._pending[path]
            elif signature != pending.signature:
                pending.signature, pending.stable_since = signature, now
            elif now - pending.stable_since >= pending.settle:
                del self._pending[path]
                done.append(path)
        return done

    def next_check(self) -> float | None:
        """Seconds until the earliest pending file could be ready, or None when nothing is pending."""
        if not self._pending:
            return None
        now = self.clock()
        return max(0.0, min(p.stable_since + p.settle - now for p in self._pending.values()))


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return info.st_size, info.st_mtime_ns

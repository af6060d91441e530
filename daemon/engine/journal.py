"""Where each run of this process stands, in a small file that outlives the process when it is killed.

When a process dies during a run, the next gristmill on this machine reads its journal to learn
whether the run was doing its own work in that process (reading its file, running its steps,
filing) or waiting on something outside it (the model server, the sandboxed extraction child).
Only the first can be the document's fault (see `takeover.py`). Entries are written into a shared
memory map of the file and never fsynced: the map's pages are the file's pages in the kernel's
page cache, which SIGKILL and out-of-memory kills leave to the kernel, and it keeps them; a power
loss may lose them, and the crash then counts as the document's, as it would without a journal.
A run writes eight entries: through the map they cost no system call, where each `pwrite` let
another thread take the interpreter's lock (BENCHMARKS.md, "Issue 17, eighth round").
"""

from __future__ import annotations

import mmap
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path

SUFFIX = ".journal"
_SLOT = 16  # bytes per entry: run id right-aligned in 13, a space, the phase, a newline
_EMPTY = b" " * (_SLOT - 1) + b"\n"
_SLOTS = 64  # slots the file starts with; it doubles when more runs are in hand at once


class Phase(StrEnum):
    WORKING = "w"  # the run's own work, in this process
    WAITING = "m"  # waiting on the model server or the extraction child


class Journal:
    """The journal of one process (lease owner): one fixed-size slot per run it has in hand."""

    def __init__(self, folder: Path | None, owner: str) -> None:
        """`folder` None: a journal that keeps nothing (a pool used without crash accounting)."""
        self.folder, self.owner = folder, owner
        self.path: Path | None = None
        self._fd: int | None = None
        self._map: mmap.mmap | None = None
        self._lock = threading.Lock()
        if folder is not None:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.path = journal_path(folder, owner)
            self._fd = os.open(self.path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o600)
            self._grow(_SLOTS)
        self._slots: dict[int, int] = {}
        self._free: list[int] = []
        self._used = 0

    def enter(self, run_id: int) -> None:
        """This process took `run_id`: its own work starts."""
        with self._lock:
            slot = self._free.pop() if self._free else self._used
            self._used = max(self._used, slot + 1)
            self._slots[run_id] = slot
            if self._map is not None and self._used * _SLOT > len(self._map):
                self._grow(2 * len(self._map) // _SLOT)
        self._write(run_id, Phase.WORKING)

    @contextmanager
    def waiting(self, run_id: int) -> Iterator[None]:
        """While the body runs, `run_id` waits outside this process."""
        self._write(run_id, Phase.WAITING)
        try:
            yield
        finally:
            self._write(run_id, Phase.WORKING)

    def leave(self, run_id: int) -> None:
        """The outcome of `run_id` is recorded (or it is no longer this process's)."""
        with self._lock:
            slot = self._slots.pop(run_id, None)
            if slot is None or self._map is None:
                return
            self._map[slot * _SLOT : (slot + 1) * _SLOT] = _EMPTY
            self._free.append(slot)

    def close(self) -> None:
        """A clean exit: nothing is in hand, and the file goes."""
        with self._lock:
            if self._map is not None:
                self._map.close()
                self._map = None
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def _write(self, run_id: int, phase: Phase) -> None:
        with self._lock:
            slot = self._slots.get(run_id)
            if slot is None or self._map is None:
                return
            self._map[slot * _SLOT : (slot + 1) * _SLOT] = b"%13d %b\n" % (run_id, phase.encode())

    def _grow(self, slots: int) -> None:
        """The file holds `slots` slots, the new ones empty, and is mapped whole (the caller holds the lock)."""
        assert self._fd is not None
        have = len(self._map) if self._map is not None else 0
        os.pwrite(self._fd, _EMPTY * (slots - have // _SLOT), have)
        if self._map is not None:
            self._map.close()
        self._map = mmap.mmap(self._fd, slots * _SLOT)


def read_journal(path: Path) -> dict[int, Phase] | None:
    """What a journal says of each run in hand; None when there is no such file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    found: dict[int, Phase] = {}
    for start in range(0, len(data) - _SLOT + 1, _SLOT):
        run_id, _, phase = data[start : start + _SLOT].decode("ascii", "replace").strip().partition(" ")
        if run_id.isdigit() and phase in (Phase.WORKING.value, Phase.WAITING.value):
            found[int(run_id)] = Phase(phase)
    return found


def journal_path(folder: Path, owner: str) -> Path:
    """Where the journal of `owner` is."""
    return folder / f"{owner}{SUFFIX}"

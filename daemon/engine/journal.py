"""Where each run of this process stands, in a small file that outlives the process when it is killed.

When a process dies during a run, the next gristmill on this machine reads its journal to learn
whether the run was doing its own work in that process (reading its file, running its steps,
filing) or waiting on something outside it (the model server, the sandboxed extraction child).
Only the first can be the document's fault (see `takeover.py`). Entries are written with one
`pwrite` each and never fsynced: SIGKILL and out-of-memory kills leave the page cache to the
kernel, which keeps it; a power loss may lose them, and the crash then counts as the document's,
as it would without a journal.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path

SUFFIX = ".journal"
_SLOT = 16  # bytes per entry: run id right-aligned in 13, a space, the phase, a newline
_EMPTY = b" " * (_SLOT - 1) + b"\n"


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
        if folder is not None:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.path = journal_path(folder, owner)
            self._fd = os.open(self.path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o600)
        self._lock = threading.Lock()
        self._slots: dict[int, int] = {}
        self._free: list[int] = []
        self._used = 0

    def enter(self, run_id: int) -> None:
        """This process took `run_id`: its own work starts."""
        with self._lock:
            slot = self._free.pop() if self._free else self._used
            self._used = max(self._used, slot + 1)
            self._slots[run_id] = slot
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
            if slot is None or self._fd is None:
                return
            os.pwrite(self._fd, _EMPTY, slot * _SLOT)
            self._free.append(slot)

    def close(self) -> None:
        """A clean exit: nothing is in hand, and the file goes."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)

    def _write(self, run_id: int, phase: Phase) -> None:
        with self._lock:
            slot = self._slots.get(run_id)
            if slot is None or self._fd is None:
                return
            os.pwrite(self._fd, f"{run_id:>13} {phase.value}\n".encode(), slot * _SLOT)


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

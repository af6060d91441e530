"""Waking a running daemon from another process on this machine (`gristmill retry`).

Idle workers sleep until a run of their own process is queued; a run that another process put
back in the queue would wait for their next look (up to half a minute). The daemon watches a
small folder in its data dir (`wake/`, inotify: no cost while nothing happens) and any gristmill
command that queued work touches the file in it. A daemon on another machine (PostgreSQL) is not
reached this way; it finds the runs at its next look.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger("gristmill")

FOLDER = "wake"
BELL = "bell"


class _Ring(FileSystemEventHandler):
    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in ("opened", "closed_no_write", "deleted"):
            self.callback()


class Doorbell:
    """Calls `callback` whenever another process rings `ring(data_dir)`."""

    def __init__(self, data_dir: Path, callback: Callable[[], None]) -> None:
        self.folder, self.callback = data_dir / FOLDER, callback
        self._observer: Any = None

    def start(self) -> None:
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            observer = Observer()
            observer.schedule(_Ring(self.callback), str(self.folder), recursive=False)
            observer.start()
        except OSError as exc:  # only a delay is lost: runs queued elsewhere wait for the next look
            log.warning(
                "cannot watch %s for wake-ups (%s); runs retried elsewhere start at the next look", self.folder, exc
            )
            return
        self._observer = observer

    def alive(self) -> bool:
        return self._observer is None or self._observer.is_alive()

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)


def ring(data_dir: Path) -> None:
    """Wake the daemons that use `data_dir` on this machine (nothing happens when none runs)."""
    folder = data_dir / FOLDER
    if not folder.is_dir():
        return  # no daemon ever ran here
    try:
        fd = os.open(folder / BELL, os.O_CREAT | os.O_WRONLY, 0o600)
        try:
            os.write(fd, b"!")  # a close after writing: the event the daemon listens for
        finally:
            os.close(fd)
    except OSError as exc:
        log.debug("could not ring %s: %s", folder, exc)

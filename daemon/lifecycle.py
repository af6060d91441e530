"""The daemon's life cycle: signals become flags, edits in the workflows folder become reloads.

Signal handlers only set plain attributes and write one byte to a wake-up pipe; they never take a
lock (a handler that takes a lock its own thread holds deadlocks). The main loop waits on the pipe.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from daemon import early_signals
from daemon.errors import WorkflowError
from daemon.workflow import Workflow

log = logging.getLogger("gristmill")

RELOAD_QUIET = 0.3  # seconds without further edits before the workflows folder is read again


class Lifecycle:
    """Stop, stop now, reload: requested by signals or other threads, acted on by the main loop."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.stopping = False
        self.aborted = False  # a second stop signal: release running runs and leave at once
        self._reload_at: float | None = None
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)

    def install(self) -> None:
        """Take over SIGTERM and SIGINT (stop, then stop now) and SIGHUP (reload workflows)."""
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, lambda signum, frame: self.request_reload(now=True))
        for _ in early_signals.take():  # a stop asked for while the command was still loading
            self.request_stop()

    def request_stop(self) -> None:
        """First call: finish running runs and stop; any later call: stop at once."""
        self.aborted = self.stopping
        self.stopping = True
        self._poke()

    def request_reload(self, *, now: bool = False) -> None:
        """Read the workflows folder again, after a short quiet time unless `now`."""
        self._reload_at = self.clock() + (0.0 if now else RELOAD_QUIET)
        self._poke()

    def wait(self, timeout: float) -> None:
        """Sleep until poked or `timeout`, but no later than a pending reload is due."""
        due = self._reload_at
        if due is not None:
            timeout = min(timeout, max(0.0, due - self.clock()))
        if not self.stopping:
            select.select([self._read], [], [], max(0.0, timeout))
        try:
            while self._read.recv(512):
                pass
        except BlockingIOError:
            pass

    def take_reload(self) -> bool:
        """Whether a reload is due now (and consider it done)."""
        due = self._reload_at
        if due is None or due > self.clock():
            return False
        self._reload_at = None
        return True

    def close(self) -> None:
        self._read.close()
        self._write.close()

    def _on_stop(self, signum: int, frame: Any) -> None:
        self.request_stop()

    def _poke(self) -> None:
        try:
            self._write.send(b"!")
        except (BlockingIOError, OSError):
            pass  # the pipe is full (already poked) or closed (shutting down)


class _Changes(FileSystemEventHandler):
    """Runs on the observer's thread: any edit of a workflow file asks for a reload."""

    def __init__(self, changed: Callable[[], None]) -> None:
        self.changed = changed

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write") or event.is_directory:
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        if any(os.fsdecode(p).endswith((".yaml", ".yml")) for p in paths if p):
            self.changed()


class FolderWatch:
    """Watches the workflows folder and calls `changed` on every edit of a workflow file."""

    def __init__(self, folder: Path, changed: Callable[[], None]) -> None:
        self.folder, self.changed = folder, changed
        self._observer: Any = None

    def start(self) -> None:
        if not self.folder.is_dir():
            log.warning("%s is not a folder; workflow edits are picked up on SIGHUP only", self.folder)
            return
        self._observer = Observer()
        self._observer.schedule(_Changes(self.changed), str(self.folder), recursive=False)
        self._observer.start()

    def alive(self) -> bool:
        return self._observer is None or self._observer.is_alive()

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)


def keep_last_good(
    previous: Mapping[str, Workflow], loaded: Mapping[str, Workflow], errors: list[WorkflowError]
) -> dict[str, Workflow]:
    """The earlier version of each workflow whose file is now broken (and whose name is free)."""
    broken = {Path(e.path).resolve() for e in errors}
    kept: dict[str, Workflow] = {}
    for name, workflow in previous.items():
        source = workflow.source
        if name in loaded or source is None or Path(source).resolve() not in broken:
            continue
        kept[name] = workflow
        log.warning("%s is broken; workflow '%s' keeps running as last loaded", source, name)
    return kept

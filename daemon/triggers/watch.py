"""Where a file event becomes a run: watchdog observers feed a settle loop that submits files."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserver

from daemon.triggers.match import Matcher
from daemon.triggers.settle import SettleTracker
from daemon.workflow import Workflow

log = logging.getLogger("gristmill")

Submit = Callable[[Workflow, Path], None]


@dataclass(frozen=True)
class Watch:
    """One watch trigger: its workflow, folder matcher and settle time."""

    workflow: Workflow
    matcher: Matcher
    settle: float

    @classmethod
    def of(cls, workflow: Workflow) -> Watch:
        spec = workflow.trigger.watch
        assert spec is not None
        root = Path(os.path.abspath(spec.path.expanduser()))
        matcher = Matcher(root, tuple(spec.patterns), tuple(spec.ignore), spec.recursive, spec.depth)
        return cls(workflow, matcher, spec.settle_seconds)


class _Handler(FileSystemEventHandler):
    """Runs on the observer's thread: only hands events over, never does work."""

    def __init__(self, events: queue.SimpleQueue) -> None:
        self.events = events

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("deleted", "opened", "closed_no_write"):
            return
        path = event.dest_path if event.event_type == "moved" else event.src_path
        closed = event.event_type in ("closed", "moved")
        self.events.put((os.fsdecode(path), closed))


class Watcher:
    """Watches every watch workflow's folder and submits each settled, wanted file once."""

    def __init__(self, submit: Submit, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.submit = submit
        self.tracker = SettleTracker(clock)
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._watches: list[Watch] = []
        self._observers: list = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def configure(self, workflows: list[Workflow]) -> None:
        """Take the watch workflows among `workflows`."""
        self._watches = [Watch.of(w) for w in workflows if w.trigger.watch is not None]

    def start(self) -> None:
        """Watch every configured folder for new files."""
        for watch in self._watches:
            self._observe(watch)
        self._thread = threading.Thread(target=self._loop, name="settle", daemon=True)
        self._thread.start()

    def scan(self) -> int:
        """Submit every wanted file already in the watched folders, oldest first; return the count."""
        count = 0
        for watch in self._watches:
            for path in sorted(_walk(watch), key=_mtime):
                self.submit(watch.workflow, path)
                count += 1
        return count

    def stop(self) -> None:
        """Stop observers and the settle loop."""
        self._stop.set()
        self._events.put(None)
        for observer in self._observers:
            observer.stop()
        for observer in self._observers:
            observer.join(timeout=5)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _observe(self, watch: Watch) -> None:
        spec = watch.workflow.trigger.watch
        root = watch.matcher.root
        root.mkdir(parents=True, exist_ok=True)
        observer = PollingObserver(timeout=spec.poll_interval) if spec.poll else Observer()
        observer.schedule(_Handler(self._events), str(root), recursive=spec.recursive)
        try:
            observer.start()
        except OSError as exc:
            log.warning("cannot use inotify on %s (%s); polling it every %ss instead", root, exc, spec.poll_interval)
            observer = PollingObserver(timeout=spec.poll_interval)
            observer.schedule(_Handler(self._events), str(root), recursive=spec.recursive)
            observer.start()
        self._observers.append(observer)

    def _loop(self) -> None:
        while not self._stop.is_set():
            wait = self.tracker.next_check()
            try:
                item = self._events.get(timeout=None if wait is None else max(wait, 0.05))
            except queue.Empty:
                item = ()
            if item is None:
                return
            if item:
                self._note(Path(item[0]), item[1])
            for path in self.tracker.ready():
                self._submit_all(path)

    def _note(self, path: Path, closed: bool) -> None:
        settle = max((w.settle for w in self._watches if w.matcher.wants(path)), default=None)
        if settle is not None:
            self.tracker.touch(path, settle, closed=closed)

    def _submit_all(self, path: Path) -> None:
        for watch in self._watches:
            if watch.matcher.wants(path):
                try:
                    self.submit(watch.workflow, path)
                except Exception:  # one bad file must not stop the watcher
                    log.exception("could not queue %s for %s", path, watch.workflow.name)


def _walk(watch: Watch) -> Iterator[Path]:
    root = watch.matcher.root
    if not root.is_dir():
        return
    for folder, dirs, files in os.walk(root):
        relative = Path(folder).relative_to(root).parts
        dirs[:] = [d for d in dirs if watch.matcher.wants_dir((*relative, d))]
        for name in files:
            path = Path(folder) / name
            if not path.is_symlink() and watch.matcher.wants(path):
                yield path


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0

"""Where a file event becomes a run: observers and scans feed a settle loop that submits files.

Three ways a file is found: watchdog events (inotify, or polling), the scan at start-up, and the
periodic rescan that catches events lost to queue overflows and watcher restarts. All three end
in `Handover.offer_all`, which skips a file version already submitted (see `Submitted`), so a rescan
costs a stat per file, not a hash; the store's dedupe on sha256 is the final word on "once". The
files of a settle pass or a scan are queued in batches, one write transaction each (handover.py),
and a scan's batches only as fast as the workers take their runs (pacing.py).
"""

from __future__ import annotations

import logging
import os
import queue
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from itertools import islice
from pathlib import Path

from watchdog.events import (
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

from daemon import words
from daemon.engine.intake import Intake
from daemon.files.paths import static_base
from daemon.triggers.base import TriggerSource
from daemon.triggers.handover import QUEUE_BATCH, Handover
from daemon.triggers.match import Matcher
from daemon.triggers.pacing import Pacer
from daemon.triggers.roots import absolute_folder, ensure_root, polling_reason
from daemon.triggers.scan import Found, oldest_first
from daemon.triggers.settle import SettleTracker
from daemon.triggers.submitted import Submitted
from daemon.workflow import WatchTrigger, Workflow

log = logging.getLogger("gristmill")

CLOSE_GRACE = 0.5  # seconds a file closed after writing must stay unchanged (a writer may reopen it)
STORE_RETRY = 5.0  # seconds before a file the database could not take (locked, full) is offered again
BATCH = 256  # events noted at most before the settle loop looks for ready files (one pass per batch)
FIRST_BATCH = 32  # files of a scan's first batch: the workers start on it while the full batches follow
# The events a watch acts on. Asked of watchdog per schedule, so inotify's mask leaves out the rest
# (opens and closes without writing: our own hashing and reading of every file, several per run) in
# the kernel, and the directory events watchdog adds to each create, move and delete never reach us.
WANTED_EVENTS = [FileCreatedEvent, FileModifiedEvent, FileAttribEvent, FileClosedEvent, FileMovedEvent]


class Arrival(StrEnum):
    """How an event saw a file arrive; decides how long it must then stay unchanged."""

    CHANGED = "changed"  # created, modified, attributes: the full settle time
    CLOSED = "closed"  # closed after writing: CLOSE_GRACE
    MOVED_IN = "moved"  # renamed into the folder: complete already
    RETRY = "retry"  # the database could not take it: offered again after STORE_RETRY


@dataclass(frozen=True)
class Watch:
    """One watch trigger: its workflow, folder matcher and settle time."""

    workflow: Workflow
    matcher: Matcher
    settle: float

    @classmethod
    def of(cls, workflow: Workflow) -> Watch:
        spec: WatchTrigger = workflow.trigger.spec
        root = absolute_folder(spec.path)
        # Its own output is not input: the folders it files into are left out of a recursive watch.
        own = [Path(os.path.abspath(static_base(t))) for t in workflow.destinations()]
        inside = tuple(p for p in own if root in p.parents)
        matcher = Matcher(root, tuple(spec.patterns), tuple(spec.ignore), spec.recursive, spec.depth, inside)
        return cls(workflow, matcher, spec.settle_seconds)

    def wait_for(self, how: Arrival) -> float:
        """Seconds the file must stay unchanged after an event of this kind."""
        if how is Arrival.MOVED_IN:
            return 0.0
        return min(self.settle, CLOSE_GRACE) if how is Arrival.CLOSED else self.settle


class _Handler(FileSystemEventHandler):
    """Runs on the observer's thread: only hands events over, never does work."""

    def __init__(self, events: queue.SimpleQueue) -> None:
        self.events = events

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("deleted", "opened", "closed_no_write"):
            return  # filtered out by WANTED_EVENTS already; kept for observers that ignore the filter
        path = event.dest_path if event.event_type == "moved" else event.src_path
        how = {"closed": Arrival.CLOSED, "moved": Arrival.MOVED_IN}.get(event.event_type, Arrival.CHANGED)
        self.events.put((os.fsdecode(path), how))


class Watcher(TriggerSource):
    """Watches every watch workflow's folder and queues each settled, wanted file once."""

    def __init__(
        self,
        intake: Intake,
        *,
        rescan_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        observer_factory: Callable[[], BaseObserver] = Observer,
        queued_from: Callable[[int], int] | None = None,
    ) -> None:
        self.intake, self.rescan_seconds = intake, rescan_seconds
        self.clock, self.wall, self.observer_factory = clock, wall, observer_factory
        # The store's count of the queued runs from an id on: with it, a scan is paced (pacing.py).
        self.queued_from = queued_from
        self._watches: list[Watch] = []
        self._running = False
        self._scanning = threading.Lock()  # one scan at a time: a rescan does not start beside a long one
        self._reset()
        self.rescans = 0  # periodic rescans completed (for logs and tests)

    def _reset(self) -> None:
        self.tracker = SettleTracker(self.clock)
        self.submitted = Submitted()
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self.handover = Handover(self.intake, self.submitted, lambda path: self._events.put((str(path), Arrival.RETRY)))
        self._observers: list[BaseObserver] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._scans: list[threading.Thread] = []  # a reload's scan: it ends, so the health check leaves it out

    def configure(self, workflows: list[Workflow]) -> None:
        """Take the watch workflows among `workflows`; while watching, a changed watch restarts it."""
        before = [(w.workflow.name, w.workflow.trigger) for w in self._watches]
        self._watches = [Watch.of(w) for w in workflows if w.trigger.spec_of("watch") is not None]
        if self._running and before != [(w.workflow.name, w.workflow.trigger) for w in self._watches]:
            self.stop()
            self._reset()
            self.start()
            self._scan_in_background()

    def start(self) -> None:
        """Watch every configured folder; settle (and periodically rescan) on background threads."""
        self._running = True
        for watch in self._watches:
            self._observe(watch)
        self._spawn("settle", self._loop)
        if self.rescan_seconds > 0:
            self._spawn("rescan", self._rescan_loop)

    def scan(self) -> int:
        """Offer every wanted file in the watched folders, oldest first; return how many were new.

        Files changed within their settle time go to the settle loop instead of straight to intake.
        With the store's count (`queued_from`) the scan is paced: each batch waits while the runs
        it queued before keep the workers busy, so a backlog of 100,000 files is queued as the
        workers take it, which may take hours; a stop ends the wait and the scan at once.
        """
        with self._scanning:
            return self._scan(self._pacer())

    def catch_up(self) -> None:
        """`run --once`: queue what is in the folders now, waiting for recent files to settle.

        Not paced: the workers start once everything is queued.
        """
        for watch in self._watches:
            ensure_root(watch.matcher.root, watch.workflow.name)
        with self._scanning:
            self._scan(None)
        self.settle_pending()

    def settle_pending(self) -> None:
        """Without the settle thread (`run --once`): wait for noted files to settle; submit them."""
        while not self._stop.is_set():
            while self._take(block=False, timeout=None):
                pass
            self._submit_ready()
            wait = self.tracker.next_check()
            if wait is None:
                return
            self._stop.wait(max(wait, 0.05))

    def alive(self) -> bool:
        """Whether every observer and background thread is still running (for the health check)."""
        return all(t.is_alive() for t in [*self._threads, *self._observers])

    def stop(self) -> None:
        """Stop observers, the settle loop and the rescans."""
        self._running = False
        self._stop.set()
        self._events.put(None)
        for observer in self._observers:
            observer.stop()
        for observer in self._observers:
            observer.join(timeout=5)
        for thread in [*self._threads, *self._scans]:
            thread.join(timeout=5)

    # -- observers --------------------------------------------------------------------------
    def _observe(self, watch: Watch) -> None:
        spec: WatchTrigger = watch.workflow.trigger.spec
        root = watch.matcher.root
        if not ensure_root(root, watch.workflow.name):
            return
        if spec.poll:
            self._observers.append(self._started(PollingObserver(timeout=spec.poll_interval), watch))
            return
        try:
            observer = self._started(self.observer_factory(), watch)
        except OSError as exc:
            log.warning("%s", polling_reason(exc, root, spec.poll_interval))
            observer = self._started(PollingObserver(timeout=spec.poll_interval), watch)
        self._observers.append(observer)

    def _started(self, observer: BaseObserver, watch: Watch) -> BaseObserver:
        spec: WatchTrigger = watch.workflow.trigger.spec
        observer.schedule(
            _Handler(self._events), str(watch.matcher.root), recursive=spec.recursive, event_filter=WANTED_EVENTS
        )
        observer.start()
        return observer

    # -- the settle loop --------------------------------------------------------------------
    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=self._guarded(target), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _guarded(self, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            while not self._stop.is_set():
                try:
                    target()
                    return
                except Exception:  # a bug must not end watching: log it and carry on
                    log.exception("the %s loop failed; restarting it", threading.current_thread().name)
                    self._stop.wait(1.0)

        return run

    def _loop(self) -> None:
        while not self._stop.is_set():
            wait = self.tracker.next_check()
            taken = self._take(block=True, timeout=None if wait is None else max(wait, 0.05))
            if not taken and self._stop.is_set():
                return
            # Events that came meanwhile are noted first, so a burst of drops is one pass over the
            # pending files and one wake-up of this thread, not one of each per event.
            for _ in range(BATCH if taken else 0):
                if not self._take(block=False, timeout=None):
                    break
            self._submit_ready()

    def _take(self, *, block: bool, timeout: float | None) -> bool:
        """Note one event from the queue; False when there was none (or the stop marker)."""
        try:
            item = self._events.get(block=block, timeout=timeout)
        except queue.Empty:
            return False
        if item is None:
            return False
        self._note(Path(item[0]), Arrival(item[1]))
        return True

    def _rescan_loop(self) -> None:
        while not self._stop.wait(self.rescan_seconds):
            if not self._scanning.acquire(blocking=False):
                continue  # a paced scan is still queueing a backlog: the next rescan lists the folder
            try:
                found = self._scan(self._pacer())
            finally:
                self._scanning.release()
            self.rescans += 1
            if found:
                log.info("rescan: %s the watcher had not reported", words.count(found, "file"))

    def _note(self, path: Path, how: Arrival) -> None:
        wanting = [w for w in self._watches if w.matcher.wants(path)]
        if not wanting:
            return
        if os.path.islink(path):
            for watch in wanting:
                self.handover.refuse_link(watch.workflow, path)
            return
        settle = max(w.settle for w in wanting)
        if how is Arrival.RETRY:
            self.tracker.again_in(path, STORE_RETRY, settle)
            return
        self.tracker.touch(path, settle, wait=max(w.wait_for(how) for w in wanting))

    def _submit_ready(self) -> None:
        ready = self.tracker.ready()
        self.handover.offer_all((w.workflow, path) for path in ready for w in self._watches if w.matcher.wants(path))

    # -- scans ------------------------------------------------------------------------------
    def _pacer(self) -> Pacer | None:
        return None if self.queued_from is None else Pacer(self.queued_from, self._stop)

    def _scan(self, pacer: Pacer | None) -> int:
        """`scan`, paced by `pacer` (None: at full speed); the caller holds `_scanning`."""
        stop, count = self._stop, 0  # a reload replaces self._stop: this scan ends with its own
        seen = pacer.saw if pacer is not None else lambda run: None
        size = FIRST_BATCH
        for watch in self._watches:
            listing = oldest_first(watch.matcher)
            while batch := list(islice(listing, size)):  # 100,000 files are offered a batch at a time
                if stop.is_set() or (pacer is not None and not pacer.wait()):
                    return count
                size = QUEUE_BATCH
                offers = []
                for found in batch:
                    taken = self._consider(watch, found)
                    if taken is None:
                        offers.append((watch.workflow, found.path))
                    else:
                        count += taken
                count += self.handover.offer_all(offers, seen=seen)
        return count

    def _scan_in_background(self) -> None:
        """Scan on a thread of its own (after a reload): the caller, the daemon's main loop, goes on."""

        def scan() -> None:
            try:
                self.scan()
            except Exception:  # a bug must not end the daemon: the periodic rescan finds what is left
                log.exception("the scan of the watched folders failed")

        thread = threading.Thread(target=scan, name="scan", daemon=True)
        thread.start()
        self._scans.append(thread)

    # -- handing files to intake ------------------------------------------------------------
    def _consider(self, watch: Watch, found: Found) -> bool | None:
        """A file of a scan as it is now: refuse links, settle recent files; None for one to offer now.

        Looked at again, not as listed: a paced scan reaches the last files of a backlog long after
        listing them, and one rewritten meanwhile must settle, not be taken half written.
        """
        try:
            info = os.lstat(found.path)
        except OSError:
            return False  # gone since it was listed (filed by its run, say)
        if stat.S_ISLNK(info.st_mode):
            return self.handover.refuse_link(watch.workflow, found.path)
        if self.wall() - info.st_mtime_ns / 1e9 < watch.settle:
            self._events.put((str(found.path), Arrival.CHANGED))  # still being written, perhaps
            return True
        return None

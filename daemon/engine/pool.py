"""A bounded pool of workers that claim queued runs, execute them and record how they ended."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from daemon import defaults, failpoints
from daemon.domain import Run, RunStatus
from daemon.engine.journal import Journal
from daemon.engine.outage import Gate
from daemon.engine.outcomes import Outcomes
from daemon.engine.resource_outage import FolderOutages, StoreOutage
from daemon.engine.runner import Runner
from daemon.engine.spares import Spares
from daemon.engine.takeover import Takeover, new_owner
from daemon.errors import (
    FolderUnavailable,
    GristmillError,
    LeaseLost,
    ModelError,
    ModelUnavailable,
    SkipRun,
    StoreError,
    Unavailable,
)  # fmt: skip
from daemon.store import RunStore
from daemon.workflow import Workflow

log = logging.getLogger("gristmill")

# After a run: the next run claimed with its outcome (or None: none was due) and the wake count seen
# before that claim; None when no claim went with the outcome.
Claimed = tuple[Run | None, int] | None

IDLE_WAIT = 30.0  # seconds a worker sleeps with nothing due, unless woken by new work
STOP_POLL = 0.1  # seconds between looks at `abort` while waiting for running runs to finish
BUG_PAUSE = 1.0  # seconds a worker pauses after an internal error before it looks again


class WorkerPool:
    """`size` threads, each running one run at a time; leases renewed by one heartbeat thread.

    The heartbeat also gives back the runs of processes that died (`Takeover`), restarts a worker
    that died (`supervise`), and notices a database file that was deleted or replaced: that, and
    only that kind of store failure, ends the pool through `on_fatal`. Other store failures are
    outages (`StoreOutage`): the workers wait and go on.
    """

    def __init__(
        self,
        store: RunStore,
        runner: Runner,
        *,
        size: int,
        gate: Gate,
        workflows: Callable[[], Mapping[str, Workflow]],
        lease_seconds: float = defaults.LEASE_SECONDS,
        heartbeat_seconds: float = defaults.HEARTBEAT_SECONDS,
        backoff_max: float = defaults.BACKOFF_MAX_SECONDS,
        retry_base: float = 1.0,
        journal: Journal | None = None,
        store_outage: StoreOutage | None = None,
        on_fatal: Callable[[StoreError], None] = lambda exc: None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        succeeded: Callable[[Run], None] = lambda run: None,
        on_heartbeat: Callable[[], None] = lambda: None,
        moved: Callable[[Run, Path], None] = lambda run, destination: None,
        spares: Spares | None = None,
    ) -> None:
        self.store, self.runner, self.size, self.gate = store, runner, size, gate
        # The last `spares.count` workers take runs only while spares are wanted (daemon/engine/spares.py).
        self.spares = spares or Spares(0)
        self.lease_seconds, self.clock, self.on_fatal = lease_seconds, clock, on_fatal
        self.on_heartbeat = on_heartbeat  # the node's heartbeat (daemon.nodes), with the leases'
        self.heartbeat_seconds = min(heartbeat_seconds, lease_seconds / 2)
        self.workflows = workflows
        self.succeeded = succeeded  # told of each run that succeeded for real (shadow mode)
        self.journal = journal or Journal(None, new_owner())
        self.owner = self.journal.owner  # the lease owner: host, pid and a random part
        self.fatal: StoreError | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self.store_outage = store_outage or StoreOutage(cap=backoff_max)
        self.folders = FolderOutages(cap=backoff_max)
        self.outcomes = Outcomes(
            store, self.owner, store_outage=self.store_outage, stopping=self._stop, workflows=workflows,
            retry_base=retry_base, clock=clock, moved=moved,
        )  # fmt: skip
        self.takeover = Takeover(store, self.journal.folder, me=self.owner, in_hand=lambda: set(self._in_flight))
        self._lock = threading.Lock()  # guards _idle, _aside, _wakes, _in_flight and _ending
        self._idle: set[int] = set()
        self._aside: set[int] = set()  # spares standing aside: never rung by wake(), looking again each window
        # One bell per worker, so that one new run wakes one idle worker, not all of them.
        self._bells = [threading.Event() for _ in range(size)]
        self._wakes = 0  # counts wakes, so a worker never sleeps through one that came mid-claim
        self._in_flight: dict[int, Run] = {}
        self._workers: list[threading.Thread] = []
        self._heart: threading.Thread | None = None
        self._ending: set[int] = set()  # runs whose outcome is being recorded: their lease ends with it

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the workers and the heartbeat."""
        self._workers = [self._spawn(f"worker-{n}", self._work, n) for n in range(self.size)]
        self._start_heartbeat()

    def _spawn(self, name: str, target: Callable[..., None], *args: object) -> threading.Thread:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        return thread

    def _start_heartbeat(self) -> None:
        if self._heart is None or not self._heart.is_alive():
            self._heart = self._spawn("heartbeat", self._heartbeat)

    def supervise(self) -> None:
        """Start again any worker, or the heartbeat, that died (as huey's consumer does)."""
        if self._stop.is_set() or not self._workers:
            return
        for n, thread in enumerate(self._workers):
            if not thread.is_alive():
                log.error("worker %d had stopped; starting it again", n)
                self._workers[n] = self._spawn(f"worker-{n}", self._work, n)
        if self._heart is not None and not self._heart.is_alive():
            log.error("the heartbeat had stopped; starting it again")
            self._start_heartbeat()

    def stop(self, timeout: float, abort: Callable[[], bool] = lambda: False) -> list[int]:
        """Take no new runs; wait up to `timeout` (or until `abort()`) for running ones; return the rest."""
        self._stop.set()
        self.wake_all()
        deadline = time.monotonic() + timeout
        while any(t.is_alive() for t in self._workers) and time.monotonic() < deadline and not abort():
            alive = next(t for t in self._workers if t.is_alive())
            alive.join(min(STOP_POLL, max(0.0, deadline - time.monotonic())))
        self._done.set()
        with self._lock:
            return list(self._in_flight)

    def alive(self) -> bool:
        """Every worker and the heartbeat thread are running (after start, before stop)."""
        threads = [*self._workers, self._heart]
        return bool(self._workers) and all(t is not None and t.is_alive() for t in threads)

    def wake(self) -> None:
        """A new run was queued: one idle worker looks for it (busy ones look when they finish)."""
        with self._lock:
            self._wakes += 1
            if self._idle:  # the lowest: a spare (the last workers) only when no other is idle
                first = min(self._idle)
                self._idle.discard(first)
                self._bells[first].set()

    def wake_all(self) -> None:
        """Every worker looks again (workflows changed, a run was retried, or stopping)."""
        with self._lock:
            self._wakes += 1
            self._idle.clear()
            for bell in self._bells:
                bell.set()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def is_idle(self) -> bool:
        """No run in flight and every worker found nothing to claim since the last wake."""
        with self._lock:
            return not self._in_flight and len(self._idle) + len(self._aside) == self.size

    def execute_now(self, run_id: int) -> None:
        """Claim one given queued run and execute it on the calling thread."""
        run = self.store.claim(self.owner, self.lease_seconds, run_id=run_id)
        if run is None:
            return
        self._start_heartbeat()  # a long run here keeps its lease like any other
        self._hold(run)

    # -- workers ----------------------------------------------------------------------------
    def _work(self, n: int) -> None:
        while not self._stop.is_set():
            try:
                self._look(n)
            except StoreError as exc:
                self._store_failed(exc, n)
            except Exception:  # a bug of ours must not end the worker: keep the traceback, go on
                log.exception("worker %d hit an internal error; it goes on", n)
                self._sleep(n, BUG_PAUSE, idle=False)

    def _look(self, n: int) -> None:
        """Claim one run and execute it, or sleep until there may be one."""
        if not self._wanted(n):  # before the gate: a spare standing aside must not take its one probe
            self._stand_aside(n)
            return
        allowed, wait = self.gate.may_call()
        if not allowed:
            self._sleep(n, wait, idle=False)
            return
        wakes = self._wakes
        run = self.store.claim(self.owner, self.lease_seconds, workflows=list(self.workflows()))
        while run is not None:
            after = self._hold(run, worker=n)
            if after is None:
                return  # the outcome went without a claim: look again from the start
            run, wakes = after  # the next run, claimed by the write that recorded the success
        self.gate.end_probe()
        self._sleep(n, self._idle_wait(), idle=True, unless_woken_since=wakes)

    def _wanted(self, n: int) -> bool:
        return n < self.size - self.spares.count or self.spares.wanted()

    def _stand_aside(self, n: int) -> None:
        """A spare not wanted now: it waits a window (or a wake_all) and looks again."""
        with self._lock:
            self._aside.add(n)
        try:
            self._sleep(n, self.spares.window, idle=False)
        finally:
            with self._lock:
                self._aside.discard(n)

    def _hold(self, run: Run, *, worker: int | None = None) -> Claimed:
        """Execute a claimed run; on a pool's `worker`, its success may claim the next run (see `_succeeded`)."""
        self.store_outage.ok()  # a claim that took a run wrote to the store (an empty one may not have)
        with self._lock:
            self._in_flight[run.id] = run
        self.journal.enter(run.id)
        try:
            return self._execute(run, worker)
        finally:
            self.journal.leave(run.id)
            with self._lock:
                self._in_flight.pop(run.id, None)
                self._ending.discard(run.id)

    def _store_failed(self, exc: StoreError, n: int) -> None:
        if exc.fatal:
            self._die(exc)
        elif not self._stop.is_set():
            self._sleep(n, self.store_outage.failed(exc), idle=False)

    def _die(self, exc: StoreError) -> None:
        """The database cannot come back (deleted, replaced, corrupt): stop working, say so once."""
        with self._lock:
            first, self.fatal = self.fatal is None, self.fatal or exc
        if first:
            log.critical("%s; gristmill stops", exc)
            self._stop.set()
            self.wake_all()
            self.on_fatal(exc)

    def _sleep(self, n: int, seconds: float, *, idle: bool, unless_woken_since: int | None = None) -> None:
        with self._lock:
            if unless_woken_since is not None and self._wakes != unless_woken_since:
                return  # work came while this worker was looking: look again
            if idle:
                self._idle.add(n)
        if not self._stop.is_set():
            self._bells[n].wait(seconds)
        self._bells[n].clear()
        with self._lock:
            self._idle.discard(n)  # looking again; idle once more only if it finds nothing

    def _idle_wait(self) -> float:
        due = self.store.next_due()
        if due is None:
            return IDLE_WAIT
        return min(IDLE_WAIT, max(0.01, (due - self.clock()).total_seconds()))

    def _execute(self, run: Run, worker: int | None) -> Claimed:
        started, done = time.monotonic(), self.outcomes
        try:
            try:
                outputs = self.runner.execute(run, self.owner)
            finally:
                with self._lock:  # from here on the heartbeat leaves it alone (see _renew)
                    self._ending.add(run.id)
        except SkipRun as exc:
            self.gate.end_probe()
            done.finish(run, RunStatus.SKIPPED, started, error=exc.message)
        except LeaseLost as exc:
            self.gate.end_probe()
            log.warning("%s; this worker leaves it", exc.message)
        except ModelUnavailable as exc:
            delay = self.gate.down(exc.message, exc.retry_after)
            done.release(run, error=exc.message, delay=delay, refund=True)
        except FolderUnavailable as exc:
            self.gate.end_probe()
            done.release(run, error=exc.message, delay=self.folders.down(exc.folder, exc.message, run.id), refund=True)
        except Unavailable as exc:  # another service (a mail server): only this run waits
            self.gate.end_probe()
            done.wait_out(run, exc.message, self.gate.cap)
        except StoreError as exc:  # a write of the run itself failed: wait for the store, then queue it again
            self.gate.end_probe()
            if exc.fatal:
                raise
            delay = self.store_outage.failed(exc)
            done.release(run, error=f"{exc.message}; queued again", delay=delay, refund=True)
        except GristmillError as exc:
            if isinstance(exc, ModelError):
                self.gate.up()
            else:
                self.gate.end_probe()
            done.retry_or_fail(run, exc.message, started, final=not exc.retryable)
        except Exception as exc:  # a bug of ours: keep the daemon alive, keep the traceback
            self.gate.end_probe()
            log.exception("run %d (%s) hit an internal error", run.id, run.workflow)
            done.retry_or_fail(run, f"internal error: {type(exc).__name__}: {exc}", started)
        else:
            self.gate.up()
            failpoints.hit("before_finish")
            return self._succeeded(run, started, outputs, worker)
        return None

    def _succeeded(self, run: Run, started: float, outputs: dict[str, Any], worker: int | None) -> Claimed:
        """Record a success; a worker free to look for its next run claims it in the same write.

        One write transaction instead of two per run (BENCHMARKS.md, "The write path"); the crash
        reasoning is at `RunStore.finish_and_claim`.
        """
        wakes = self._wakes  # as in _look: a wake-up after this is not slept through
        # A spare no longer wanted claims no next run (nor does `execute_now`, on no worker).
        looks = worker is not None and self._wanted(worker) and not self._stop.is_set() and self.gate.may_call()[0]
        if looks:
            workflows = list(self.workflows())
            finished, claimed = self.outcomes.succeed_and_claim(
                run, started, outputs, lease_seconds=self.lease_seconds, workflows=workflows
            )
        else:
            finished, claimed = self.outcomes.finish(run, RunStatus.SUCCEEDED, started, outputs=outputs), None
        self.folders.succeeded(run.id)
        if finished and not run.dry_run:
            self.succeeded(run)
        return (claimed, wakes) if looks else None

    # -- the heartbeat ----------------------------------------------------------------------
    def _heartbeat(self) -> None:
        # Runs until stop() has waited for the workers, so runs finishing late keep their leases.
        while not self._done.wait(self.heartbeat_seconds):
            try:
                self.store.check_file()
                if self._renew():
                    self.store_outage.ok()
                taken = self.takeover.sweep()
                self.on_heartbeat()
            except StoreError as exc:  # an outage is logged once by the gate; a lost database ends the pool
                if exc.fatal:
                    self._die(exc)
                else:
                    self.store_outage.failed(exc)
                continue
            except Exception:  # a bug of ours must not end the heartbeat
                log.exception("the heartbeat hit an internal error; it goes on")
                continue
            if taken:
                self.wake_all()
            self.supervise()

    def _renew(self) -> int:
        """Renew the leases of the runs in hand; how many were renewed."""
        with self._lock:
            running = [run for run in self._in_flight.values() if run.id not in self._ending]
        renewed = 0
        for run in running:
            if self.store.renew(run.id, self.owner, self.lease_seconds):
                renewed += 1
            elif not self._ended(run.id):
                log.warning("run %d (%s) lost its lease; another worker may take it", run.id, run.workflow)
        return renewed

    def _ended(self, run_id: int) -> bool:
        """The run's outcome was being recorded meanwhile: a renewal that came too late is no lost lease."""
        with self._lock:
            return run_id in self._ending or run_id not in self._in_flight

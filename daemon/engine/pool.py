"""A bounded pool of workers that claim queued runs, execute them and record how they ended."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from daemon import defaults, failpoints, metrics
from daemon.domain import Run, RunStatus
from daemon.engine.on_failure import after_failure
from daemon.engine.outage import OutageGate
from daemon.engine.runner import Runner
from daemon.errors import GristmillError, LeaseLost, ModelError, ModelUnavailable, SkipRun, Unavailable
from daemon.store import RunStore
from daemon.workflow import Workflow

log = logging.getLogger("gristmill")

IDLE_WAIT = 30.0  # seconds a worker sleeps with nothing due, unless woken by new work
STOP_POLL = 0.1  # seconds between looks at `abort` while waiting for running runs to finish


class WorkerPool:
    """`size` threads, each running one run at a time; leases renewed by one heartbeat thread.

    The heartbeat also returns to the queue the runs whose lease lapsed anywhere (a crashed
    process sharing this database), so they come back without a restart.
    """

    def __init__(
        self,
        store: RunStore,
        runner: Runner,
        *,
        size: int,
        gate: OutageGate,
        workflows: Callable[[], Mapping[str, Workflow]],
        lease_seconds: float = defaults.LEASE_SECONDS,
        heartbeat_seconds: float = defaults.HEARTBEAT_SECONDS,
        retry_base: float = 1.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store, self.runner, self.size, self.gate = store, runner, size, gate
        self.lease_seconds, self.retry_base, self.clock = lease_seconds, retry_base, clock
        self.heartbeat_seconds = min(heartbeat_seconds, lease_seconds / 2)
        self.workflows = workflows
        self.owner = f"{uuid.uuid4().hex[:12]}"
        self._stop = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()  # guards _idle, _wakes, _in_flight and _ending
        self._idle: set[int] = set()
        # One bell per worker, so that one new run wakes one idle worker, not all of them.
        self._bells = [threading.Event() for _ in range(size)]
        self._wakes = 0  # counts wakes, so a worker never sleeps through one that came mid-claim
        self._in_flight: dict[int, Run] = {}
        self._ending: set[int] = set()  # runs whose outcome is being recorded: their lease ends with it
        self._waits: dict[int, int] = {}  # run id → outages of a service other than the model in a row
        self._threads: list[threading.Thread] = []

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the workers and the heartbeat."""
        for n in range(self.size):
            thread = threading.Thread(target=self._work, args=(n,), name=f"worker-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._start_heartbeat()

    def _start_heartbeat(self) -> None:
        if any(t.name == "heartbeat" for t in self._threads):
            return
        heartbeat = threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True)
        heartbeat.start()
        self._threads.append(heartbeat)

    def stop(self, timeout: float, abort: Callable[[], bool] = lambda: False) -> list[int]:
        """Take no new runs; wait up to `timeout` (or until `abort()`) for running ones; return the rest."""
        self._stop.set()
        self.wake_all()
        deadline = time.monotonic() + timeout
        workers = [t for t in self._threads if t.name != "heartbeat"]
        while any(t.is_alive() for t in workers) and time.monotonic() < deadline and not abort():
            alive = next(t for t in workers if t.is_alive())
            alive.join(min(STOP_POLL, max(0.0, deadline - time.monotonic())))
        self._done.set()
        with self._lock:
            return list(self._in_flight)

    def alive(self) -> bool:
        """Every worker and the heartbeat thread are running (after start, before stop)."""
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def wake(self) -> None:
        """A new run was queued: one idle worker looks for it (busy ones look when they finish)."""
        with self._lock:
            self._wakes += 1
            if self._idle:
                self._bells[self._idle.pop()].set()

    def wake_all(self) -> None:
        """Every worker looks again (workflows changed, or stopping)."""
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
            return not self._in_flight and len(self._idle) == self.size

    def execute_now(self, run_id: int, *, dry_run: bool = False) -> None:
        """Claim one given queued run and execute it on the calling thread."""
        run = self.store.claim(self.owner, self.lease_seconds, run_id=run_id)
        if run is None:
            return
        self._start_heartbeat()  # a long run here keeps its lease like any other
        with self._lock:
            self._in_flight[run.id] = run
        try:
            self._execute(run, dry_run=dry_run)
        finally:
            with self._lock:
                self._in_flight.pop(run.id, None)
                self._ending.discard(run.id)

    # -- workers ----------------------------------------------------------------------------
    def _work(self, n: int) -> None:
        while not self._stop.is_set():
            allowed, wait = self.gate.may_call()
            if not allowed:
                self._sleep(n, wait, idle=False)
                continue
            wakes = self._wakes
            run = self.store.claim(self.owner, self.lease_seconds, workflows=list(self.workflows()))
            if run is None:
                self.gate.end_probe()
                self._sleep(n, self._idle_wait(), idle=True, unless_woken_since=wakes)
                continue
            with self._lock:
                self._in_flight[run.id] = run
            try:
                self._execute(run)
            finally:
                with self._lock:
                    self._in_flight.pop(run.id, None)
                    self._ending.discard(run.id)

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

    def _execute(self, run: Run, *, dry_run: bool = False) -> None:
        started = time.monotonic()
        try:
            try:
                outputs = self.runner.execute(run, self.owner, dry_run=dry_run)
            finally:
                with self._lock:  # from here on the heartbeat leaves it alone (see _renew)
                    self._ending.add(run.id)
        except SkipRun as exc:
            self.gate.end_probe()
            self._finish(run, RunStatus.SKIPPED, started, error=exc.message)
        except LeaseLost as exc:
            self.gate.end_probe()
            log.warning("%s; this worker leaves it", exc.message)
        except ModelUnavailable as exc:
            delay = self.gate.down(exc.message)
            not_before = self.clock() + timedelta(seconds=delay)
            self.store.release(run.id, self.owner, not_before=not_before, error=exc.message, refund_attempt=True)
        except Unavailable as exc:
            self.gate.end_probe()
            self._wait_out(run, exc.message)
        except GristmillError as exc:
            if isinstance(exc, ModelError):
                self.gate.up()
            else:
                self.gate.end_probe()
            self._fail_or_retry(run, exc.message, started, final=not exc.retryable)
        except Exception as exc:  # a bug of ours: keep the daemon alive, keep the traceback
            self.gate.end_probe()
            log.exception("run %d (%s) hit an internal error", run.id, run.workflow)
            self._fail_or_retry(run, f"internal error: {type(exc).__name__}: {exc}", started)
        else:
            self.gate.up()
            failpoints.hit("before_finish")
            self._finish(run, RunStatus.SUCCEEDED, started, outputs=outputs)

    def _wait_out(self, run: Run, error: str) -> None:
        """Another service (a mail server) is away: only this run waits, with backoff, its attempt refunded."""
        with self._lock:
            outages = self._waits[run.id] = self._waits.get(run.id, 0) + 1
        delay = min(self.gate.cap, self.retry_base * 2 ** (outages - 1))
        self.store.release(run.id, self.owner, not_before=self.clock() + timedelta(seconds=delay), error=error,
                           refund_attempt=True)  # fmt: skip
        if outages == 1:
            log.warning("run %d (%s) waits: %s; trying again with backoff", run.id, run.workflow, error)

    def _fail_or_retry(self, run: Run, error: str, started: float, *, final: bool = False) -> None:
        if final or run.attempts >= run.max_attempts:
            self._finish(run, RunStatus.FAILED, started, error=error)
            return
        delay = self.retry_base * 2 ** (run.attempts - 1)
        not_before = self.clock() + timedelta(seconds=delay)
        self.store.release(run.id, self.owner, not_before=not_before, error=error)
        log.info(
            "run %d (%s) attempt %d failed, retrying in %.0fs: %s", run.id, run.workflow, run.attempts, delay, error,
            extra={"run_id": run.id, "workflow": run.workflow, "outcome": "retry"},
        )  # fmt: skip

    def _finish(self, run: Run, status: RunStatus, started: float, *, outputs=None, error=None) -> None:
        with self._lock:
            self._waits.pop(run.id, None)
        if not self.store.finish(run.id, self.owner, status, outputs=outputs, error=error):
            log.warning("run %d (%s) was taken over by another worker; its result is dropped", run.id, run.workflow)
            return
        took = time.monotonic() - started
        what = run.input_path or "scheduled"
        suffix = f": {error}" if error else ""
        level = logging.WARNING if status is RunStatus.FAILED else logging.INFO
        fields = {"run_id": run.id, "workflow": run.workflow, "duration_ms": round(took * 1000), "outcome": status}
        log.log(level, "run %d %s %s %s in %.2fs%s", run.id, run.workflow, what, status, took, suffix, extra=fields)
        metrics.run_finished(run, status, took)
        if status is RunStatus.FAILED:
            after_failure(self.workflows().get(run.workflow), run, error, moved=self.runner.shared.moved)

    def _heartbeat(self) -> None:
        # Runs until stop() has waited for the workers, so runs finishing late keep their leases.
        while not self._done.wait(self.heartbeat_seconds):
            try:
                self._renew()
                self._requeue_lapsed()
            except Exception:  # a locked or failing database must not end the heartbeat
                log.exception("the heartbeat could not reach the database; trying again")

    def _renew(self) -> None:
        with self._lock:
            running = [run for run in self._in_flight.values() if run.id not in self._ending]
        for run in running:
            if not self.store.renew(run.id, self.owner, self.lease_seconds) and not self._ended(run.id):
                log.warning("run %d (%s) lost its lease; another worker may take it", run.id, run.workflow)

    def _ended(self, run_id: int) -> bool:
        """The run's outcome was being recorded meanwhile: a renewal that came too late is no lost lease."""
        with self._lock:
            return run_id in self._ending or run_id not in self._in_flight

    def _requeue_lapsed(self) -> None:
        lapsed = self.store.requeue_expired()
        if lapsed:
            log.info("returned %d runs whose worker stopped to the queue: %s", len(lapsed), ", ".join(map(str, lapsed)))
            self.wake_all()

"""The spare workers: they take runs while the daemon mostly waits, and stand aside while it is busy on its own."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from daemon.domain import NewRun, Origin, Run, RunStatus
from daemon.engine.outage import OutageGate
from daemon.engine.pool import WorkerPool
from daemon.engine.spares import Spares
from daemon.store import RunStore
from tests.support import wait_for

WINDOW = 0.05  # seconds: the pool tests' windows, short so that a decision comes at once


class Seconds:
    """Wall and CPU seconds, moved by the test."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0


def test_spares_are_wanted_until_a_full_window_finds_the_process_busy():
    s = Seconds()
    spares = Spares(1, clock=lambda: s.wall, cpu=lambda: s.cpu)
    assert spares.wanted()
    s.wall, s.cpu = 0.5, 0.5  # as busy as can be, but the window is not over
    assert spares.wanted()
    s.wall, s.cpu = 1.0, 0.9  # 0.9 CPU seconds in the window's second
    assert not spares.wanted()
    s.wall, s.cpu = 1.5, 0.95
    assert not spares.wanted()  # the decision holds until the next window ends
    s.wall, s.cpu = 2.0, 1.2  # 0.3 in the last second: the workers mostly wait
    assert spares.wanted()


@pytest.mark.parametrize(("used", "wanted"), [(0.74, True), (0.75, False)])
def test_three_quarters_of_a_cpu_is_busy(used, wanted):
    s = Seconds()
    spares = Spares(1, clock=lambda: s.wall, cpu=lambda: s.cpu)
    s.wall, s.cpu = 2.0, 2 * used
    assert spares.wanted() is wanted


class Recorder:
    """Implements the runner's `execute`: notes which worker ran each run, which takes `seconds`."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.workers: list[str] = []

    def execute(self, run: Run, owner: str) -> dict[str, Any]:
        self.workers.append(threading.current_thread().name)
        time.sleep(self.seconds)  # the run's work, during which another worker may claim
        return {"done": {"text": "ok"}}


def decided(busy: bool) -> Spares:
    """One spare whose process looks as busy as can be (`busy`) or idle, with its first window over."""
    cpu = time.monotonic if busy else (lambda: 0.0)
    spares = Spares(1, window=WINDOW, cpu=cpu)
    wait_for(lambda: spares.wanted() is not busy, timeout=10, what="the first window's decision")
    return spares


def pool_of(store: RunStore, runner: Recorder, spares: Spares) -> WorkerPool:
    return WorkerPool(
        store, runner, size=2, gate=OutageGate(), workflows=lambda: {"w": None},  # type: ignore[arg-type]
        spares=spares,
    )  # fmt: skip


@pytest.mark.parametrize("busy", [True, False])
def test_the_spare_takes_runs_only_while_the_process_is_not_busy(store, busy):
    runs = [store.enqueue(NewRun("w", Origin.MANUAL, dedupe_key=str(n)))[0] for n in range(20)]
    runner = Recorder(0.01)
    pool = pool_of(store, runner, decided(busy))
    pool.start()
    try:
        wait_for(lambda: all(store.get(r.id).status is RunStatus.SUCCEEDED for r in runs), what="every run done")
        wait_for(pool.is_idle, timeout=10, what="the pool idle, its spare standing aside or not")
    finally:
        pool.stop(5)
    assert len(runner.workers) == 20 and "worker-0" in runner.workers
    assert ("worker-1" in runner.workers) is not busy


def test_a_new_run_wakes_a_worker_that_takes_it_while_the_spare_stands_aside(store):
    """Both workers went idle while the spare was wanted; it no longer is: each wake must reach worker 0."""
    busy = threading.Event()
    spares = Spares(1, window=WINDOW, cpu=lambda: time.monotonic() if busy.is_set() else 0.0)
    runner = Recorder(0.0)
    pool = pool_of(store, runner, spares)
    pool.start()
    try:
        wait_for(lambda: len(pool._idle) == 2, timeout=10, what="both workers idle")  # noqa: SLF001
        busy.set()  # from here on every window finds the process as busy as can be
        wait_for(lambda: not spares.wanted(), timeout=10, what="the spare no longer wanted")
        for n in range(5):
            run, _ = store.enqueue(NewRun("w", Origin.MANUAL, dedupe_key=str(n)))
            pool.wake()
            # A worker sleeps 30 s when idle: a wake lost on the spare would outlast this wait.
            wait_for(lambda run=run: store.get(run.id).status is RunStatus.SUCCEEDED, timeout=10, what="the run")
    finally:
        pool.stop(5)
    assert runner.workers == ["worker-0"] * 5


class Held(Recorder):
    """A Recorder whose first `held` runs wait for `release`, each on its own worker."""

    def __init__(self, held: int) -> None:
        super().__init__(0.0)
        self.held, self.release, self.entered = held, threading.Event(), threading.Semaphore(0)

    def execute(self, run: Run, owner: str) -> dict[str, Any]:
        first = len(self.workers) < self.held
        done = super().execute(run, owner)
        if first:
            self.entered.release()
            assert self.release.wait(30), "never released"
        return done


def test_a_spare_no_longer_wanted_claims_no_next_run_with_its_last(store):
    busy = threading.Event()
    spares = Spares(1, window=WINDOW, cpu=lambda: time.monotonic() if busy.is_set() else 0.0)
    runner = Held(2)
    first = [store.enqueue(NewRun("w", Origin.MANUAL, dedupe_key=f"first-{n}"))[0] for n in range(2)]
    pool = pool_of(store, runner, spares)
    pool.start()
    try:
        for _ in first:  # one run held on each worker, the spare's taken while it was wanted
            assert runner.entered.acquire(timeout=30), "both workers never held a run"
        later = [store.enqueue(NewRun("w", Origin.MANUAL, dedupe_key=str(n)))[0] for n in range(10)]
        busy.set()
        wait_for(lambda: not spares.wanted(), timeout=10, what="the spare no longer wanted")
        runner.release.set()
        wait_for(lambda: all(store.get(r.id).status is RunStatus.SUCCEEDED for r in later), what="the later runs")
    finally:
        runner.release.set()
        pool.stop(5)
    assert sorted(runner.workers[:2]) == ["worker-0", "worker-1"]
    assert runner.workers[2:] == ["worker-0"] * 10  # the spare's success claimed nothing after it

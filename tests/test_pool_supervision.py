"""The worker pool in-process on a real SQLite store: a dead worker is started again, and a run it held
comes back without using up an attempt (the process is alive: no crash of the document's)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from daemon.domain import NewRun, Origin, Run, RunStatus
from daemon.engine.outage import OutageGate
from daemon.engine.pool import WorkerPool
from tests.support import wait_for


class DiesOnce:
    """Implements the runner's `execute`: the first call ends its thread (as no Exception would)."""

    def __init__(self) -> None:
        self.calls = 0

    def execute(self, run: Run, owner: str) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 1:
            raise SystemExit("a worker thread ends")  # not an Exception: nothing in the worker catches it
        return {"done": {"text": "ok"}}


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the thread's death is the point
def test_a_worker_that_died_is_started_again_and_its_run_comes_back(store, caplog):
    caplog.set_level(logging.INFO, logger="gristmill")
    run, _ = store.enqueue(NewRun("w", Origin.MANUAL))
    pool = WorkerPool(
        store, DiesOnce(), size=1, gate=OutageGate(), workflows=lambda: {"w": None},  # type: ignore[arg-type]
        lease_seconds=1.0, heartbeat_seconds=0.2,
    )  # fmt: skip
    pool.start()
    try:
        wait_for(lambda: store.get(run.id).status is RunStatus.SUCCEEDED, timeout=30, what="the run to succeed")
        assert pool.alive()
    finally:
        pool.stop(5)
    done = store.get(run.id)
    assert done.attempts == 1 and done.outputs == {"done": {"text": "ok"}}
    said = [r.getMessage() for r in caplog.records]
    assert "worker 0 had stopped; starting it again" in said

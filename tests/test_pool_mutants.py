"""The worker pool where only a bug or a store failure reaches it (mutants of daemon/engine/pool.py).

In-process over a real SQLite store and the real runner: a step kind registered for the test (as a
plugin registers one) raises a RuntimeError, or holds its run until the test lets it go. The store
failure in the heartbeat comes from the pool's injected `on_heartbeat` (in the daemon the node's
heartbeat, a write to the store).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from daemon.app import App
from daemon.domain import Origin, RunStatus
from daemon.engine.pool import WorkerPool
from daemon.errors import StoreError
from daemon.plugins import registry
from daemon.settings import Settings
from daemon.steps import StepContext, StepKind, StepResult
from daemon.workflow.fields import StrictModel
from tests.support import Home, make_home, wait_for

LEASE = 3.0  # seconds: short, so that a run outlives its first lease within the test
BEAT = 0.1  # seconds between heartbeats: many renewals per lease, even on a loaded machine


class NoSpec(StrictModel):
    pass


class Explode(StepKind):
    """`- explode: {}`: a step with a bug (not a GristmillError)."""

    name = "test-explode"
    Spec = NoSpec

    def run(self, spec: NoSpec, ctx: StepContext) -> StepResult:
        raise RuntimeError("a bug in a step")


class Hold(StepKind):
    """`- hold: {}`: keeps its run until the test sets `release` (entered: the run is under way)."""

    name = "test-hold"
    Spec = NoSpec

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()

    def run(self, spec: NoSpec, ctx: StepContext) -> StepResult:
        self.entered.set()
        if not self.release.wait(60):
            raise RuntimeError("the test never released the run")
        return StepResult({"held": True})


@pytest.fixture
def kinds() -> Iterator[tuple[Explode, Hold]]:
    """The two step kinds in the process's registry for this test only."""
    explode, hold = Explode(), Hold()
    reg = registry()
    reg.add_step(explode), reg.add_step(hold)  # as a plugin registers its kinds; taken out again below
    try:
        yield explode, hold
    finally:
        hold.release.set()
        reg.steps.pop(explode.name, None)
        reg.steps.pop(hold.name, None)


def workflow(name: str, kind: str) -> str:
    return f"name: {name}\ntrigger: {{watch: {{path: ~/Inbox}}}}\nsteps:\n  - id: only\n    {kind}: {{}}\n"


@pytest.fixture
def home(tmp_path) -> Home:
    made = make_home(tmp_path, "http://127.0.0.1:9")  # no model is called: no server is needed
    made.write_workflow("boom.yaml", workflow("boom", Explode.name))
    made.write_workflow("held.yaml", workflow("held", Hold.name))
    return made


@pytest.fixture
def app(home, kinds) -> Iterator[App]:
    settings = Settings(data_dir=home.data, workflows=home.workflows, ollama_url=home.ollama_url, max_attempts=1)
    made = App(settings)
    try:
        assert not made.errors, made.errors
        yield made
    finally:
        made.close()


def test_an_internal_error_on_the_last_attempt_fails_the_run_and_says_so(app, home, caplog):
    """Kills _execute__mutmut_73: the failure of a bug is recorded with the attempt's start (its duration)."""
    caplog.set_level(logging.INFO, logger="gristmill")

    run = app.trigger("boom", home.drop("a.txt", "some text\n"))

    assert run.status is RunStatus.FAILED
    assert run.error == "internal error: RuntimeError: a bug in a step"
    assert run.attempts == run.max_attempts == 1
    assert run.started_at is not None and run.finished_at is not None and run.lease_owner is None
    (ended,) = [r for r in caplog.records if getattr(r, "run_id", None) == run.id and hasattr(r, "duration_ms")]
    assert ended.outcome is RunStatus.FAILED and ended.duration_ms >= 0  # type: ignore[attr-defined]
    assert "internal error: RuntimeError: a bug in a step" in ended.getMessage()


class FailsOnce:
    """The pool's `on_heartbeat`: a store failure at the first beat after `armed`, then counts the beats."""

    def __init__(self, armed: threading.Event) -> None:
        self.armed, self.failed, self.beats_after = armed, False, 0

    def __call__(self) -> None:
        if self.failed:
            self.beats_after += 1
        elif self.armed.is_set():
            self.failed = True
            raise StoreError("database is locked")


def test_the_heartbeat_goes_on_renewing_leases_after_a_failed_store_call(app, home, kinds):
    """Kills _heartbeat__mutmut_7: one failed beat must not end the renewals; the run outlives its first lease."""
    _, hold = kinds
    beat = FailsOnce(hold.entered)
    pool = WorkerPool(
        app.store, app.runner, size=1, gate=app.gate, workflows=lambda: app.workflows,
        lease_seconds=LEASE, heartbeat_seconds=BEAT, on_heartbeat=beat,
    )  # fmt: skip
    run, _ = app.intake.file(app.workflows["held"], home.drop("b.txt", "held text\n"), trigger=Origin.MANUAL)
    pool.start()
    try:
        assert hold.entered.wait(30), "the run never started"
        wait_for(lambda: beat.failed, timeout=30, what="the heartbeat's store failure")
        # The lease as renewed before the failure: without renewals after it, it has lapsed by the end of this wait.
        before = app.store.get(run.id).lease_expires_at
        wait_for(lambda: datetime.now(UTC) > before, timeout=30, what="the lease renewed before the failure to end")

        held = app.store.get(run.id)
        assert held.status is RunStatus.RUNNING and held.lease_owner == pool.owner
        assert held.lease_expires_at > datetime.now(UTC)  # renewed after the failure
        assert beat.beats_after > 0  # the heartbeat went on (supervision, the node's heartbeat)
        assert app.store.requeue_expired() == []  # what another process's sweep would take back: nothing

        hold.release.set()
        wait_for(lambda: app.store.get(run.id).status is RunStatus.SUCCEEDED, timeout=30, what="the run to succeed")
    finally:
        hold.release.set()
        pool.stop(10)
    done = app.store.get(run.id)
    assert done.attempts == 1 and done.outputs["only"] == {"held": True}

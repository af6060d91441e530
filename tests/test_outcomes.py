"""How a run's end is recorded (daemon/engine/outcomes.py), in-process on a real SQLite store and a settable clock.

The daemon tests (test_watch_app, test_pool_supervision, test_outage) show these outcomes end to end;
these pin the arithmetic of the waits, the refunds, the log line's fields and the file's whereabouts.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest

from daemon.domain import NewRun, Origin, RunStatus
from daemon.engine.outcomes import Outcomes
from daemon.engine.resource_outage import StoreOutage
from daemon.store import RunStore, make_engine
from daemon.store.migrate import upgrade
from daemon.workflow import Workflow


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path, clock):
    engine = make_engine(f"sqlite:///{tmp_path / 'runs.db'}")
    upgrade(engine)
    yield RunStore(engine, clock=clock)
    engine.dispose()


def _outcomes(store: RunStore, clock: Clock, workflows: dict | None = None, moved: list | None = None) -> Outcomes:
    noted = moved if moved is not None else []
    return Outcomes(
        store, "w1", store_outage=StoreOutage(), stopping=threading.Event(), workflows=lambda: workflows or {},
        retry_base=2.0, clock=clock, moved=lambda run, dest: noted.append((run.id, dest)),
    )  # fmt: skip


def _claimed(store: RunStore, path: str = "/nowhere/a.txt", max_attempts: int = 3):
    store.enqueue(NewRun("inbox", Origin.FILE, path, path, path, max_attempts=max_attempts))  # content: its path
    run = store.claim("w1", 60)
    assert run is not None
    return run


def _naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None) if moment.tzinfo else moment


def _due(run, clock: Clock, seconds: float) -> bool:
    return _naive(run.not_before) == _naive(clock.now + timedelta(seconds=seconds))


def test_finish_records_the_outcome_and_logs_it_with_its_fields(store, clock, caplog):
    outcomes = _outcomes(store, clock)
    ok, bad = _claimed(store, "/nowhere/a.txt"), None
    with caplog.at_level(logging.INFO, logger="gristmill"):
        assert outcomes.finish(ok, RunStatus.SUCCEEDED, 0.0, outputs={"s": {"text": "t"}}) is True
        store.enqueue(NewRun("inbox", Origin.FILE, "/nowhere/b.txt", "def", "def"))
        bad = store.claim("w1", 60)
        assert outcomes.finish(bad, RunStatus.FAILED, 0.0, error="it broke") is True
    assert (store.get(ok.id).status, store.get(ok.id).outputs) == (RunStatus.SUCCEEDED, {"s": {"text": "t"}})
    assert (store.get(bad.id).status, store.get(bad.id).error) == (RunStatus.FAILED, "it broke")
    first, second = caplog.records
    assert (first.levelno, second.levelno) == (logging.INFO, logging.WARNING)  # a failure stands out
    for record, run, status in ((first, ok, RunStatus.SUCCEEDED), (second, bad, RunStatus.FAILED)):
        assert (record.run_id, record.workflow, record.outcome) == (run.id, "inbox", status)
        assert isinstance(record.duration_ms, int) and record.duration_ms > 0
    assert second.getMessage().endswith(": it broke")


def test_a_run_taken_over_by_another_worker_is_not_finished_by_the_first(store, clock):
    run = _claimed(store)
    clock.now += timedelta(seconds=61)  # the lease lapsed
    store.requeue_expired()
    assert store.claim("w2", 60).id == run.id
    assert _outcomes(store, clock).finish(run, RunStatus.SUCCEEDED, 0.0) is False
    assert (store.get(run.id).status, store.get(run.id).lease_owner) == (RunStatus.RUNNING, "w2")


def test_waiting_out_another_service_doubles_to_the_cap_refunds_the_attempt_and_is_said_once(store, clock, caplog):
    outcomes, run = _outcomes(store, clock), _claimed(store)
    waits = []
    with caplog.at_level(logging.INFO, logger="gristmill"):
        for _ in range(4):
            outcomes.wait_out(run, "the mail server is away", cap=10.0)
            queued = store.get(run.id)
            assert (queued.status, queued.attempts, queued.error) == (RunStatus.QUEUED, 0, "the mail server is away")
            waits.append((_naive(queued.not_before) - _naive(clock.now)).total_seconds())
            assert len(caplog.records) == 1  # said at the first wait, not again
            clock.now = queued.not_before
            run = store.claim("w1", 60)
    assert waits == [2.0, 4.0, 8.0, 10.0]
    assert [r.getMessage() for r in caplog.records] == [
        f"run {run.id} (inbox) waits: the mail server is away; trying again with backoff"
    ]
    outcomes.finish(run, RunStatus.FAILED, 0.0, error="x")  # the count of waits ends with the run
    store.retry([run.id])
    outcomes.wait_out(store.claim("w1", 60), "away again", cap=10.0)
    assert _due(store.get(run.id), clock, 2.0)


def test_a_failed_attempt_is_retried_after_a_backoff_until_the_last_which_fails(store, clock):
    outcomes, run = _outcomes(store, clock), _claimed(store, max_attempts=2)
    outcomes.retry_or_fail(run, "bad answer", 0.0)
    queued = store.get(run.id)
    assert (queued.status, queued.attempts, queued.error) == (RunStatus.QUEUED, 1, "bad answer")  # not refunded
    assert _due(queued, clock, 2.0)  # retry_base * 2 ** (attempts - 1)
    clock.now += timedelta(seconds=2)
    run = store.claim("w1", 60)
    assert run.attempts == 2
    outcomes.retry_or_fail(run, "bad again", 0.0)
    assert (store.get(run.id).status, store.get(run.id).error) == (RunStatus.FAILED, "bad again")


def test_a_final_error_fails_at_once_and_release_without_delay_is_due_now(store, clock):
    outcomes = _outcomes(store, clock)
    run = _claimed(store)
    outcomes.retry_or_fail(run, "no such model", 0.0, final=True)
    assert (store.get(run.id).status, store.get(run.id).error) == (RunStatus.FAILED, "no such model")
    other = _claimed(store, "/nowhere/c.txt")
    assert outcomes.release(other, error="stopping") is True
    assert (store.get(other.id).status, store.get(other.id).not_before) == (RunStatus.QUEUED, None)


def _workflow(failed_folder) -> Workflow:
    return Workflow.model_validate({
        "name": "inbox", "trigger": {"watch": {"path": "/tmp/in"}}, "steps": [{"summarise": {}}],
        "on_failure": {"move_to": str(failed_folder)},
    })  # fmt: skip


def test_a_failed_run_s_file_goes_where_on_failure_says_and_the_error_says_where(store, clock, tmp_path):
    (tmp_path / "Inbox").mkdir()
    source = tmp_path / "Inbox" / "a.txt"
    source.write_text("a")
    moved: list = []
    outcomes = _outcomes(store, clock, {"inbox": _workflow(tmp_path / "Failed")}, moved)
    run = _claimed(store, str(source))
    outcomes.failed(run, "it broke", 0.0)
    dest = tmp_path / "Failed" / "a.txt"
    assert store.get(run.id).error == f"it broke; the file was moved to {dest} (on_failure)"
    assert moved == [(run.id, dest)] and dest.read_text() == "a" and not source.exists()


def test_a_failed_run_says_where_an_earlier_step_moved_its_file(store, clock, tmp_path):
    source, elsewhere = tmp_path / "a.txt", tmp_path / "Sorted" / "a.txt"
    elsewhere.parent.mkdir()
    elsewhere.write_text("a")  # a route step of this run moved it here
    outcomes, run = _outcomes(store, clock), _claimed(store, str(source))
    store.save_outputs(run.id, "w1", {"filed": {"action": "move_to", "destination": str(elsewhere)}})
    outcomes.failed(run, "a later step broke", 0.0)
    assert (
        store.get(run.id).error
        == f"a later step broke; the file is at {elsewhere}, where an earlier step of this run moved it"
    )

    gone = _claimed(store, str(tmp_path / "gone.txt"))  # no file anywhere: nothing to say about it
    outcomes.failed(gone, "it broke", 0.0)
    assert store.get(gone.id).error == "it broke"

"""Ticks become runs: once per tick, catch-up after a gap, no overlap; real SQLite, injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from daemon.domain import RunStatus
from daemon.engine.intake import Intake
from daemon.schedule.firing import TickFirer
from daemon.store import RunStore
from daemon.store.db import make_engine
from daemon.store.migrate import upgrade
from daemon.workflow import Workflow

START = datetime(2026, 11, 11, 10, 0, 30, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock():
    return Clock(START)


@pytest.fixture
def store(tmp_path, clock):
    engine = make_engine(f"sqlite:///{tmp_path / 'gristmill.db'}")
    upgrade(engine)
    yield RunStore(engine, clock=clock)
    engine.dispose()


def _firer(store, clock, grace=60):
    return TickFirer(store, Intake(store, max_attempts=3), grace=timedelta(seconds=grace), clock=clock)


def _workflow(**schedule) -> Workflow:
    return Workflow.model_validate({
        "name": "digest", "trigger": {"schedule": schedule},
        "steps": [{"write": {"path": "/tmp/never/{{ run.id }}.md", "content": "x"}}],
    })  # fmt: skip


def _runs(store):
    return list(reversed(store.history(workflow="digest", limit=10_000)))


def _finish_all(store):
    while (run := store.claim("test", 60)) is not None:
        store.finish(run.id, "test", RunStatus.SUCCEEDED, outputs={})


def test_each_tick_runs_once_however_often_it_is_fired(store, clock):
    firer, workflow = _firer(store, clock), _workflow(every="1m")
    assert firer.fire(workflow) == []  # first sight: nothing was missed yet
    for _ in range(3):
        clock.advance(minutes=1)
        assert len(firer.fire(workflow)) == 1
        assert firer.fire(workflow) == []  # a second wake-up for the same tick
        assert _firer(store, clock).fire(workflow) == []  # another process on the same database
        _finish_all(store)
    runs = _runs(store)
    assert [r.dedupe_key for r in runs] == [
        "tick:2026-11-11T10:01:00Z", "tick:2026-11-11T10:02:00Z", "tick:2026-11-11T10:03:00Z",
    ]  # fmt: skip
    assert {r.trigger.value for r in runs} == {"schedule"}


def test_catch_up_after_a_gap_runs_once_and_records_what_was_missed(store, clock):
    firer, workflow = _firer(store, clock, grace=5), _workflow(every="1m")
    firer.fire(workflow)
    clock.advance(hours=2, seconds=10)  # the daemon was down across 120 ticks

    created = firer.fire(workflow)

    assert len(created) == 1
    run = created[0]
    assert run.status is RunStatus.QUEUED and run.dedupe_key == "tick:2026-11-11T12:00:00Z"
    assert run.context["missed_ticks"] == 120
    assert run.context["missed_from"] == "2026-11-11T10:01:00+00:00"
    assert run.context["missed_to"] == "2026-11-11T12:00:00+00:00"
    assert firer.fire(workflow) == [] and _firer(store, clock, grace=5).fire(workflow) == []


def test_without_catch_up_missed_ticks_are_recorded_as_skipped(store, clock):
    firer, workflow = _firer(store, clock, grace=5), _workflow(every="1m", catch_up=False)
    firer.fire(workflow)
    clock.advance(hours=2, seconds=10)

    created = firer.fire(workflow)

    assert [r.status for r in created] == [RunStatus.SKIPPED]
    assert created[0].error.startswith("120 ticks from 2026-11-11T10:01:00+00:00 to 2026-11-11T12:00:00+00:00")
    assert created[0].error.endswith("catch_up is false")
    clock.advance(seconds=22)  # back to normal: the next tick (12:01) is recorded 2 s late
    assert [r.status for r in firer.fire(workflow)] == [RunStatus.QUEUED]


def test_overlap_skip_records_the_tick_with_the_reason(store, clock):
    firer, workflow = _firer(store, clock), _workflow(every="1m")
    firer.fire(workflow)
    clock.advance(minutes=1)
    first = firer.fire(workflow)[0]
    store.claim("worker", 60)  # the first tick's run is still running
    clock.advance(minutes=1)

    second = firer.fire(workflow)[0]

    assert second.status is RunStatus.SKIPPED
    assert second.error == f"run {first.id} of this workflow was still running; overlap: skip"
    assert store.claim("other", 60) is None


def test_overlap_queue_waits_until_the_running_run_ends(store, clock):
    firer, workflow = _firer(store, clock), _workflow(every="1m", overlap="queue")
    firer.fire(workflow)
    clock.advance(minutes=1)
    first = firer.fire(workflow)[0]
    assert store.claim("worker", 60).id == first.id
    clock.advance(minutes=1)
    second = firer.fire(workflow)[0]
    assert second.status is RunStatus.QUEUED

    assert store.claim("other", 60) is None  # never two runs of the workflow at once
    store.finish(first.id, "worker", RunStatus.SUCCEEDED, outputs={})
    assert store.claim("other", 60).id == second.id


def test_overlap_queue_waits_only_for_a_run_of_its_own_workflow(store, clock):
    firer, workflow = _firer(store, clock), _workflow(every="1m", overlap="queue")
    other = workflow.model_copy(update={"name": "report"})
    for each in (other, workflow):
        firer.fire(each)  # a schedule's first look sets its start
    clock.advance(minutes=1)
    busy = firer.fire(other)[0]
    assert store.claim("worker", 60).id == busy.id
    waiting = firer.fire(workflow)[0]
    assert store.claim("other", 60).id == waiting.id  # another workflow's run is running, not its own


def test_a_repeated_dst_hour_fires_once_minute_by_minute(store):
    berlin = ZoneInfo("Europe/Berlin")
    clock = Clock(datetime(2026, 10, 25, 0, 0, tzinfo=berlin))
    firer, workflow = _firer(store, clock), _workflow(cron="30 2 * * *", timezone="Europe/Berlin")
    firer.fire(workflow)
    for _ in range(6 * 60):  # 00:00 to 05:00 local: 02:00-03:00 happens twice
        clock.advance(minutes=1)
        firer.fire(workflow)
    runs = _runs(store)
    assert [r.dedupe_key for r in runs] == ["tick:2026-10-25T00:30:00Z"]  # 02:30 CEST, not 02:30 CET too


def test_run_once_coalesces_the_due_ticks_into_one_run(store, clock):
    firer, workflow = _firer(store, clock, grace=60), _workflow(every="10s")
    firer.fire(workflow)
    clock.advance(seconds=35)

    created = firer.fire(workflow, coalesce=True)

    assert len(created) == 1 and created[0].dedupe_key == "tick:2026-11-11T10:01:00Z"
    assert created[0].context["coalesced_ticks"] == 2

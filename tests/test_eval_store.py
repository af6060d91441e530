"""The eval store, shadow answers and the run selection of eval and export, on a real database.

Written for every database the store supports: the `engine` fixture gives SQLite here; the
PostgreSQL fixture joins it as a second parameter where the test suite has one.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from daemon.domain import NewRun, Origin, RunStatus
from daemon.errors import UsageError
from daemon.evals.values import Answer, Timing
from daemon.store import RunStore, make_engine
from daemon.store.corrections import Change, CorrectionStore
from daemon.store.evals import EvalStore, ShadowStore, has_due_runs, recorded_runs
from daemon.store.migrate import upgrade
from daemon.store.retention import forget_runs


@pytest.fixture(params=["sqlite"])
def engine(request, tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'gristmill.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def _finished(store: RunStore, workflow: str, status: RunStatus, n: int) -> list[int]:
    ids = []
    for i in range(n):
        run, _ = store.enqueue(NewRun(workflow, Origin.MANUAL, input_path=f"/in/{workflow}-{status}-{i}.txt"))
        claimed = store.claim("w", 30, run_id=run.id)
        assert claimed is not None
        store.finish(run.id, "w", status, outputs={"kind": {"label": "a", "confidence": 0.9}})
        ids.append(run.id)
    return ids


def test_recorded_runs_newest_n_oldest_first_by_status(engine):
    store = RunStore(engine)
    good = _finished(store, "w", RunStatus.SUCCEEDED, 5)
    bad = _finished(store, "w", RunStatus.FAILED, 2)
    _finished(store, "other", RunStatus.SUCCEEDED, 2)
    assert [r.id for r in recorded_runs(engine, "w", statuses=[RunStatus.SUCCEEDED])] == good
    assert [r.id for r in recorded_runs(engine, "w", statuses=[RunStatus.SUCCEEDED], limit=2)] == good[-2:]
    assert [r.id for r in recorded_runs(engine, "w")] == good + bad
    future = datetime.now(UTC) + timedelta(days=1)
    assert recorded_runs(engine, "w", since=future) == []


def test_has_due_runs_sees_queued_runs_that_may_start(engine):
    store = RunStore(engine)
    now = datetime.now(UTC)
    assert not has_due_runs(engine, now)
    run, _ = store.enqueue(NewRun("w", Origin.MANUAL))
    assert has_due_runs(engine, now)
    store.claim("w", 30, run_id=run.id)
    assert not has_due_runs(engine, now)
    store.release(run.id, "w", not_before=now + timedelta(minutes=5), error="later")
    assert not has_due_runs(engine, now) and has_due_runs(engine, now + timedelta(minutes=6))


def test_evals_are_stored_listed_and_read_back(engine):
    evals = EvalStore(engine)
    figures = {"steps": {"kind": {"kind": "classify", "compared": 3, "agreed": 2, "agreement": 0.6667}}}
    first = evals.add("w", "m1", "replay", since=None, run_limit=10, runs_seen=3, agreement=0.6667, figures=figures)
    second = evals.add("w", "m2", "shadow", since=datetime.now(UTC), run_limit=None, runs_seen=3, agreement=None,
                       figures={"steps": {}})  # fmt: skip
    evals.add("v", "m1", "replay", since=None, run_limit=None, runs_seen=0, agreement=None, figures={"steps": {}})
    assert evals.get(first.id) == first and first.figures == figures and first.run_limit == 10
    assert [e.id for e in evals.recent(workflow="w")] == [second.id, first.id]
    assert len(evals.recent()) == 3
    with pytest.raises(UsageError, match="no eval with id 999"):
        evals.get(999)


def test_a_shadow_answer_is_kept_once_per_run_step_and_model(engine):
    store = RunStore(engine)
    (run_id,) = _finished(store, "w", RunStatus.SUCCEEDED, 1)
    shadows = ShadowStore(engine)
    timing = Timing(calls=1, wall_ms=12.5, completion_tokens=4, eval_ns=1000, prompt_tokens=30, total_ns=2000)
    answer = Answer(run_id, "kind", "cand", {"label": "b", "confidence": 0.5}, None, timing, raw='{"label":"b"}')
    assert shadows.record(answer) is True
    assert shadows.record(answer) is False  # asked twice: the first stays
    assert shadows.record(Answer(run_id, "kind", "other", None, "unusable", timing)) is True
    assert shadows.answered(run_id) == {("kind", "cand"), ("kind", "other")}
    (kept,) = shadows.answers("w", "cand")
    assert kept == answer
    assert shadows.models("w") == ["cand", "other"] and shadows.answers("nope") == []
    # Pruning or deleting a run takes its shadow answers with it.
    forget_runs(store.engine, "w", datetime.now(UTC) + timedelta(days=1), "old")
    assert shadows.answers("w") == []


def test_a_refile_is_recorded_on_its_correction(engine):
    store = RunStore(engine)
    (run_id,) = _finished(store, "w", RunStatus.SUCCEEDED, 1)
    corrections = CorrectionStore(engine)
    correction = corrections.add(run_id, "kind", Change.label_of("b"), author="test")
    assert correction.refile is None and corrections.latest(run_id, "kind") == correction
    corrections.set_refile(correction.id, {"filed": {"intent": "move_to", "destination": "/x/b.txt"}})
    assert corrections.latest(run_id, "kind").refile == {"filed": {"intent": "move_to", "destination": "/x/b.txt"}}
    assert corrections.latest(run_id, "other") is None

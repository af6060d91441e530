"""`retention` and `gristmill prune`: old runs forget their outputs and model calls; files stay."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from daemon.domain import ModelCall, NewRun, Origin, RunStatus
from daemon.retention import prune
from daemon.store import RunStore
from daemon.store.db import make_engine
from daemon.store.migrate import upgrade
from daemon.workflow import Workflow
from tests.support import INVOICE, make_home, wait_for

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _workflow(name: str, retention: str | None) -> Workflow:
    extra = {"retention": retention} if retention else {}
    return Workflow.model_validate(
        {"name": name, "trigger": {"watch": {"path": "/tmp/in"}}, "steps": [{"summarise": {}}], **extra}
    )


@pytest.fixture
def store(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'runs.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


def _finished_run(engine, workflow: str, at: datetime, status: RunStatus = RunStatus.SUCCEEDED) -> int:
    store = RunStore(engine, clock=lambda: at)
    run, _ = store.enqueue(NewRun(workflow, Origin.FILE, f"/in/{at:%j}", f"sha{at:%j}", f"sha{at:%j}"))
    store.claim("w", 60, run_id=run.id)
    store.record_call(run.id, ModelCall(model="m", messages=[{"role": "user", "content": "secret"}]), attempt=1)
    store.finish(run.id, "w", status, outputs={"summarise": {"text": "secret"}}, error="boom secret")
    return run.id


def test_prune_forgets_old_runs_of_workflows_with_a_retention(store):
    old = _finished_run(store, "kept-short", T0)
    old_failed = _finished_run(store, "kept-short", T0 + timedelta(days=1), RunStatus.FAILED)
    recent = _finished_run(store, "kept-short", T0 + timedelta(days=89))
    forever = _finished_run(store, "no-retention", T0)
    now = T0 + timedelta(days=95)
    runs = RunStore(store, clock=lambda: now)
    workflows = [_workflow("kept-short", "90d"), _workflow("no-retention", None)]

    dry = prune(runs, workflows, now, dry_run=True)
    assert (dry.total_runs, dry.total_calls) == (2, 2) and runs.get(old).outputs
    report = prune(runs, workflows, now)

    assert report.runs == {"kept-short": 2} and report.total_calls == 2
    for run_id in (old, old_failed):
        pruned = runs.get(run_id)
        assert pruned.outputs == {} and pruned.error.startswith("pruned: older than the retention of 90d")
        assert runs.calls(run_id) == []
    assert runs.get(old_failed).status is RunStatus.FAILED  # history keeps how it ended
    assert runs.get(recent).outputs and runs.calls(recent)
    assert runs.get(forever).outputs and runs.calls(forever)
    assert prune(runs, workflows, now).total_runs == 0  # already pruned: nothing more to do


def test_a_pruned_file_run_still_deduplicates(store):
    run_id = _finished_run(store, "w", T0)
    runs = RunStore(store, clock=lambda: T0 + timedelta(days=2))
    prune(runs, [_workflow("w", "1d")], T0 + timedelta(days=2))

    again, created = runs.enqueue(NewRun("w", Origin.FILE, runs.get(run_id).input_path, "sha001", "sha001"))

    assert not created and again.id == run_id


def test_queued_and_running_runs_are_never_pruned(store):
    runs = RunStore(store, clock=lambda: T0)
    _queued, _ = runs.enqueue(NewRun("w", Origin.FILE, "/in/a", "a", "a"))
    running, _ = runs.enqueue(NewRun("w", Origin.FILE, "/in/b", "b", "b"))
    runs.claim("w", 60, run_id=running.id)

    assert prune(runs, [_workflow("w", "1s")], T0 + timedelta(days=365)).total_runs == 0


# ------------------------------------------------------------------ the CLI and the daemon

RETAINED = """\
name: retained
trigger: {watch: {path: ~/Inbox, settle_seconds: 0}}
retention: 30d
steps:
  - summarise: {max_words: 10}
  - route: {default: {move_to: ~/Documents/Done}}
"""


def _age_everything(home, days: int) -> None:
    engine = make_engine(f"sqlite:///{home.data / 'gristmill.db'}")
    with engine.begin() as conn:
        old = (datetime.now(UTC) - timedelta(days=days)).replace(tzinfo=None)
        conn.execute(text("UPDATE runs SET created_at = :t, finished_at = :t"), {"t": old})
    engine.dispose()


@pytest.fixture
def home(tmp_path, standin):
    home = make_home(tmp_path, standin.url)
    home.write_workflow("retained.yaml", RETAINED)
    home.drop("invoice.txt", INVOICE)
    home.cli("run", "--once", check=True)
    return home


def test_gristmill_prune_dry_run_then_prune_leaves_files_alone(home):
    _age_everything(home, 31)
    run_id = home.runs()[0]["id"]

    dry = home.cli("prune", "--dry-run", check=True)
    assert "retained: would prune 1 run, 1 model call" in dry.stdout
    assert home.runs()[0]["outputs"]

    done = home.cli("prune", check=True)
    assert "pruned 1 run and 1 model call in all" in done.stdout
    run = home.runs()[0]
    assert run["id"] == run_id and run["outputs"] == {} and run["error"].startswith("pruned:")
    assert '"calls": []' in home.cli("show", str(run_id), "--json", check=True).stdout
    assert (home.docs / "Done" / "invoice.txt").read_text() == INVOICE


def test_the_daemon_prunes_by_itself_at_start(home):
    _age_everything(home, 31)
    daemon = subprocess.Popen([sys.executable, "-m", "daemon", "run"], env=home.env, cwd=home.root,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for(lambda: home.runs()[0]["outputs"] == {}, timeout=60, what="the daemon's prune at start")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
    assert home.runs()[0]["error"].startswith("pruned: older than the retention of 30d")


def test_prune_forgets_the_shadow_answers_of_the_runs_it_forgets(store):
    from daemon.evals.values import Answer, Timing
    from daemon.store.evals import ShadowStore

    old = _finished_run(store, "kept-short", T0)
    recent = _finished_run(store, "kept-short", T0 + timedelta(days=89))
    shadows = ShadowStore(store, clock=lambda: T0)
    for run_id in (old, recent):
        answer = Answer(run_id, "summarise", "candidate", {"text": "secret"}, None, Timing(1, 5.0, 3, None), "secret")
        assert shadows.record(answer)

    prune(
        RunStore(store, clock=lambda: T0 + timedelta(days=95)),
        [_workflow("kept-short", "90d")],
        T0 + timedelta(days=95),
    )

    assert shadows.answered(old) == set()  # its candidate's answer quoted the document too
    assert shadows.answered(recent) == {("summarise", "candidate")}

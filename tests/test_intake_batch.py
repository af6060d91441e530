"""Files queued a batch per write transaction: `Intake.files` and the watcher's settle passes and scans.

Real watcher, real intake, a real SQLite store; commits are counted on the store's database.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.domain import RunStatus
from daemon.engine.intake import Intake
from daemon.errors import InputError
from daemon.store import RunStore, make_engine
from daemon.store.migrate import upgrade
from daemon.triggers import watch
from daemon.triggers.handover import QUEUE_BATCH
from daemon.triggers.watch import Watcher
from daemon.workflow import Workflow
from tests.support import counting_commits, wait_for

DEADLINE = 30.0
Q, K = RunStatus.QUEUED, RunStatus.SKIPPED


@pytest.fixture
def store(tmp_path) -> Iterator[RunStore]:
    # A short busy timeout: the test that holds the write lock elsewhere sees intake fail quickly.
    engine = make_engine(f"sqlite:///{tmp_path / 'runs.db'}", busy_timeout_ms=200)
    upgrade(engine)
    yield RunStore(engine)
    engine.dispose()


@pytest.fixture
def inbox(tmp_path) -> Path:
    (tmp_path / "Inbox").mkdir()
    return tmp_path / "Inbox"


def _workflow(inbox: Path, settle: float = 0.2, recursive: bool = False) -> Workflow:
    return Workflow.model_validate({
        "name": "sort", "trigger": {"watch": {"path": str(inbox), "settle_seconds": settle, "recursive": recursive}},
        "steps": [{"summarise": {}}],
    })  # fmt: skip


def _old_files(inbox: Path, count: int) -> list[Path]:
    """`count` files written a minute ago or more (settled), oldest first, each with its own content."""
    paths = [inbox / f"f{i:04}.txt" for i in range(count)]
    for i, path in enumerate(paths):
        path.write_text(f"file {i}")
        then = time.time() - 600 + i * 0.01
        os.utime(path, (then, then))
    return paths


def _queued_paths(store: RunStore) -> list[str]:
    return [run.input_path for run in sorted(store.history(limit=100_000), key=lambda r: r.id) if run.status is Q]


def test_a_batch_queues_the_good_files_and_gives_each_bad_one_its_own_error(store, inbox, caplog):
    woken: list[int] = []
    intake = Intake(store, max_attempts=3, wake=lambda: woken.append(1))
    workflow = _workflow(inbox)
    a, b, copy = inbox / "a.txt", inbox / "b.txt", inbox / "copy of a.txt"
    a.write_text("same")
    b.write_text("other")
    copy.write_text("same")
    fifo = inbox / "pipe"
    os.mkfifo(fifo)
    gone = inbox / "gone.txt"

    with caplog.at_level(logging.INFO, logger="gristmill"), counting_commits(store.engine) as commits:
        outcomes = intake.files([(workflow, p) for p in (a, gone, fifo, b, copy)])

    assert len(commits) == 1
    (first, new_a), missing, pipe, (second, new_b), (dup, new_dup) = outcomes
    assert new_a and new_b and new_dup and (first.status, second.status, dup.status) == (Q, Q, K)
    assert isinstance(missing, InputError) and str(missing) == f"{gone} does not exist"
    assert isinstance(pipe, InputError) and "not a regular file" in str(pipe)
    assert dup.error == f"duplicate of run {first.id} (same content)"
    assert woken == [1, 1]  # once per run a worker can take
    assert [r.message for r in caplog.records].count(f"run {dup.id} sort {copy} skipped: {dup.error}") == 1
    assert intake.files([]) == []


def test_a_file_that_vanishes_before_intake_hashes_it_is_warned_about_once_and_the_rest_are_queued(
    store, inbox, caplog
):
    watcher = Watcher(Intake(store, max_attempts=3))
    workflow = _workflow(inbox)
    a, b, c = _old_files(inbox, 3)

    def looked_at_then_b_vanishes():
        yield workflow, a
        yield workflow, b  # the watcher looks at it (lstat) now …
        b.unlink()  # … and it is gone by the time the batch reaches intake
        yield workflow, c

    with caplog.at_level(logging.WARNING, logger="gristmill"), counting_commits(store.engine) as commits:
        assert watcher.handover.offer_all(looked_at_then_b_vanishes()) == 3

    assert len(commits) == 1
    assert _queued_paths(store) == [str(a), str(c)]
    assert [r.getMessage() for r in caplog.records] == [f"not queued for sort: {b} does not exist"]
    # a and c are known now: offered again, they cost a stat each and no transaction.
    with counting_commits(store.engine) as commits:
        assert watcher.handover.offer_all([(workflow, a), (workflow, c)]) == 0
    assert commits == []


def test_a_scan_queues_a_backlog_a_batch_per_transaction_oldest_first(store, inbox):
    count = 2 * QUEUE_BATCH + 10
    paths = _old_files(inbox, count)
    watcher = Watcher(Intake(store, max_attempts=3))
    watcher.configure([_workflow(inbox)])

    with counting_commits(store.engine) as commits:
        assert watcher.scan() == count

    assert len(commits) == 3  # 256 + 256 + 10, not one per file
    assert _queued_paths(store) == [str(p) for p in paths]
    with counting_commits(store.engine) as commits:
        assert watcher.scan() == 0  # the rescan: every version already submitted
    assert commits == []


def test_a_batch_the_database_cannot_take_goes_back_for_retry_every_file_of_it(store, inbox, caplog, monkeypatch):
    monkeypatch.setattr(watch, "STORE_RETRY", 0.1)  # seconds before files the database refused are offered again
    paths = _old_files(inbox, 20)
    watcher = Watcher(Intake(store, max_attempts=3))
    watcher.configure([_workflow(inbox)])
    holder = sqlite3.connect(store.engine.url.database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock (a long `gristmill prune`, say)
    try:
        with caplog.at_level(logging.WARNING, logger="gristmill"):
            assert watcher.scan() == 20
        assert store.counts()[Q] == 0
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
            "the run database failed: the database stayed locked by another process for too long; try again; "
            "runs wait and are not lost, gristmill tries again"
        ]
        assert watcher._events.qsize() == 20  # each file of the batch, back in the queue as a retry
    finally:
        holder.execute("ROLLBACK")
        holder.close()

    with counting_commits(store.engine) as commits:
        watcher.settle_pending()
    assert 1 <= len(commits) <= 5  # a settle pass or two: the retries fall due microseconds apart
    assert _queued_paths(store) == [str(p) for p in paths]
    assert "the run database works again" in caplog.text


def test_a_burst_of_dropped_files_is_queued_in_far_fewer_transactions_than_files(store, inbox, tmp_path):
    count = 300
    staging = tmp_path / "staging"  # written elsewhere, then moved in at once: the burst does not trickle
    staging.mkdir()
    for i in range(count):
        (staging / f"drop{i:03}.txt").write_text(f"dropped {i}")
    watcher = Watcher(Intake(store, max_attempts=3))
    watcher.configure([_workflow(inbox, settle=0.3, recursive=True)])
    watcher.start()
    try:
        with counting_commits(store.engine) as commits:
            staging.rename(inbox / "batch")
            wait_for(lambda: store.counts()[Q] == count, timeout=DEADLINE, what=f"all {count} files to be queued")
    finally:
        watcher.stop()
    # One per settle pass (a pass takes at most QUEUE_BATCH files), where it was one per file.
    assert 2 <= len(commits) <= 10, len(commits)

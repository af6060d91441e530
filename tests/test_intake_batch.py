"""Files queued a batch per write transaction: `Intake.files` and the watcher's settle passes and scans.

Real watcher, real intake, a real SQLite store; commits are counted on the store's database.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daemon.domain import RunStatus
from daemon.engine.intake import Intake
from daemon.errors import InputError
from daemon.store import RunStore, make_engine
from daemon.store.migrate import upgrade
from daemon.triggers import watch
from daemon.triggers.handover import QUEUE_BATCH
from daemon.triggers.pacing import PACE_AHEAD, Pacer
from daemon.triggers.watch import FIRST_BATCH, Watcher
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

    assert len(commits) == 3  # 32 + 256 + 234, not one per file
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


class _Looks:
    """The store's count of queued runs, as a paced scan asks for it: each answer noted, waited on with deadlines."""

    def __init__(self, count: Callable[[int], int]) -> None:
        self.count = count
        self.answers: list[int] = []
        self.changed = threading.Condition()

    def __call__(self, run_id: int) -> int:
        answer = self.count(run_id)
        with self.changed:
            self.answers.append(answer)
            self.changed.notify_all()
        return answer

    def wait_until(self, predicate: Callable[[list[int]], bool], what: str) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: predicate(self.answers), timeout=DEADLINE), f"timed out: {what}"


def _recorded(store: RunStore) -> int:
    return sum(store.counts().values())


def _take(store: RunStore, runs: int) -> list[str]:
    """Do what a worker does with `runs` queued runs, oldest first: claim and finish them; their files."""
    taken = []
    for _ in range(runs):
        run = store.claim("worker", 60)
        assert run is not None
        store.finish(run.id, "worker", RunStatus.SUCCEEDED, outputs={})
        taken.append(run.input_path)
    return taken


# Runs a paced scan has queued when it first waits for the workers: its batches until more than PACE_AHEAD.
PLATEAU = FIRST_BATCH + QUEUE_BATCH * (1 + (PACE_AHEAD - FIRST_BATCH) // QUEUE_BATCH)


def _scanning(watcher: Watcher) -> tuple[threading.Thread, list[int]]:
    """The watcher's scan on a thread of its own, as the daemon runs it at start; its result when it returns."""
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(watcher.scan()), daemon=True)
    thread.start()
    return thread, result


def test_a_paced_scan_waits_while_its_batches_are_queued_and_goes_on_as_runs_are_taken(store, inbox):
    count = 5 * QUEUE_BATCH + 10
    paths = _old_files(inbox, count)
    looks = _Looks(store.queued_from)
    watcher = Watcher(Intake(store, max_attempts=3), queued_from=looks)
    watcher.configure([_workflow(inbox)])
    thread, result = _scanning(watcher)

    # Nobody claims: the scan queues until more than PACE_AHEAD of its runs wait, then only looks.
    looks.wait_until(lambda answers: PLATEAU in answers, "the scan to find its batches still queued")
    looked = len(looks.answers)
    looks.wait_until(lambda answers: len(answers) >= looked + 3, "three more looks at the queue")
    assert store.counts()[Q] == PLATEAU and thread.is_alive()
    assert set(looks.answers[looked - 1 :]) == {PLATEAU}  # it waited: nothing more was queued meanwhile

    taken = _take(store, QUEUE_BATCH)  # the workers take a batch's worth: one more batch follows, no more
    wait_for(lambda: _recorded(store) == PLATEAU + QUEUE_BATCH, timeout=DEADLINE, what="the next batch")
    looked = len(looks.answers)
    looks.wait_until(lambda answers: len(answers) >= looked + 3, "three more looks at the queue")
    assert _recorded(store) == PLATEAU + QUEUE_BATCH and store.counts()[Q] == PLATEAU and thread.is_alive()

    while thread.is_alive() or store.counts()[Q]:  # the workers keep taking runs: the whole folder goes through
        taken += _take(store, min(store.counts()[Q], 64))
    assert result == [count]
    assert taken == [str(p) for p in paths]  # every file once, oldest first


def test_a_stop_ends_a_paced_scan_at_once_and_the_rest_of_the_folder_waits_for_the_next_start(store, inbox):
    _old_files(inbox, 4 * QUEUE_BATCH)
    looks = _Looks(store.queued_from)
    watcher = Watcher(Intake(store, max_attempts=3), queued_from=looks)
    watcher.configure([_workflow(inbox)])
    watcher.start()
    thread, result = _scanning(watcher)
    looks.wait_until(lambda answers: PLATEAU in answers, "the scan to wait")

    watcher.stop()
    thread.join(DEADLINE)

    assert not thread.is_alive() and result == [PLATEAU]
    assert store.counts()[Q] == PLATEAU  # the rest is still in the folder: the next start queues it


def test_a_stop_interrupts_the_wait_even_between_two_looks_at_the_queue():
    stop = threading.Event()
    pacer = Pacer(lambda run_id: 10_000, stop, ahead=512, every=3600.0)  # full, and an hour between looks
    pacer.first = 1
    answer: list[bool] = []
    waiting = threading.Thread(target=lambda: answer.append(pacer.wait()))
    waiting.start()

    stop.set()
    waiting.join(DEADLINE)

    assert not waiting.is_alive() and answer == [False]


def test_files_dropped_while_a_backlog_is_paced_are_queued_at_once(store, inbox, tmp_path):
    _old_files(inbox, 4 * QUEUE_BATCH)
    looks = _Looks(store.queued_from)
    watcher = Watcher(Intake(store, max_attempts=3), queued_from=looks)
    watcher.configure([_workflow(inbox, settle=0.1)])
    watcher.start()
    try:
        thread, _ = _scanning(watcher)
        looks.wait_until(lambda answers: PLATEAU in answers, "the scan to wait")
        (tmp_path / "late.txt").write_text("dropped while the backlog waits")
        (tmp_path / "late.txt").rename(inbox / "late.txt")

        wait_for(lambda: store.counts()[Q] == PLATEAU + 1, timeout=DEADLINE, what="late.txt")
        assert str(inbox / "late.txt") in _queued_paths(store) and thread.is_alive()
    finally:
        watcher.stop()


def test_run_once_queues_the_whole_folder_without_waiting_for_workers(store, inbox):
    count = 4 * QUEUE_BATCH
    paths = _old_files(inbox, count)
    watcher = Watcher(Intake(store, max_attempts=3), queued_from=store.queued_from)
    watcher.configure([_workflow(inbox)])

    watcher.catch_up()  # `run --once`: the workers start after it, so nobody takes a run meanwhile

    assert _queued_paths(store) == [str(p) for p in paths]

"""RunStore and the run state machine on a real SQLite file and a real PostgreSQL database, with an injected clock.

Every test runs against both stores (the `store_url` fixture), huey-style: one contract, two backends.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.exc import StatementError

from daemon.domain import ModelCall, NewRun, Origin, RunStatus
from daemon.errors import InvalidTransition, RetryRefused, RunNotFound
from daemon.runstate import check_transition, sources, targets
from daemon.store import RunStore, make_engine
from daemon.store.migrate import upgrade
from daemon.store.statements import claim_statement, moving_to
from tests.support import counting_commits

Q, R, S, F, K = (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.SUCCEEDED,
                 RunStatus.FAILED, RunStatus.SKIPPED)  # fmt: skip


class Clock:
    """A settable clock: tests move time on instead of sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(store_url: str, clock: Clock):
    engine = make_engine(store_url)
    upgrade(engine)
    yield RunStore(engine, clock=clock)
    engine.dispose()


def file_run(path: str, digest: str = "abc", workflow: str = "inbox", **kw) -> NewRun:
    return NewRun(workflow, Origin.FILE, path, digest, digest, **kw)


def manual(workflow: str = "inbox", **kw) -> NewRun:
    return NewRun(workflow, Origin.MANUAL, **kw)


# -- the state machine ------------------------------------------------------------------------


def test_state_machine_transitions():
    check_transition(Q, R)
    check_transition(R, Q)
    for end in (S, F, K):
        check_transition(R, end)
        with pytest.raises(InvalidTransition):
            check_transition(end, Q)
    for end in (F, K):
        check_transition(end, Q, retry=True)
    with pytest.raises(InvalidTransition, match="succeeded run cannot become queued by retry"):
        check_transition(S, Q, retry=True)
    check_transition(Q, K)
    with pytest.raises(InvalidTransition, match="running run cannot become queued by retry"):
        check_transition(R, Q, retry=True)
    with pytest.raises(InvalidTransition):
        check_transition(Q, S)
    assert sources(R) == {Q}
    assert sources(Q, retry=True) == {F, K}
    assert targets(S) == frozenset()


def test_a_where_clause_for_a_change_no_status_may_make_is_refused_with_that_change():
    moving_to(Q, retry=True)  # failed or skipped runs may be retried
    with pytest.raises(InvalidTransition, match="cannot become succeeded by retry$") as caught:
        moving_to(S, retry=True)  # no run may be retried into succeeded
    assert (caught.value.new, caught.value.retry) == ("succeeded", True)


# -- enqueue ----------------------------------------------------------------------------------


def test_enqueue_records_a_queued_run(store, clock):
    run, created = store.enqueue(file_run("/in/a.pdf", context={"k": [1]}, max_attempts=5))
    assert created
    assert (run.status, run.trigger, run.input_path) == (Q, Origin.FILE, "/in/a.pdf")
    assert run.context == {"k": [1]}
    assert (run.attempts, run.max_attempts, run.outputs) == (0, 5, {})
    assert run.created_at == clock.now and run.created_at.tzinfo is not None
    assert store.get(run.id) == run


def test_the_run_an_enqueue_returns_is_the_run_as_stored(store, clock):
    # SQLite's enqueue returns the run from the values it inserted, without reading the row back.
    news = [
        file_run("/in/acme_invoice.pdf", "d1", context={"version": "12:34", "size": 7, "subfolder": ""}),
        file_run("/in/acme_invoice.pdf", "d1", context={"version": "12:99"}),  # the same drop: not created
        file_run("/in/copy.pdf", "d1", context={"version": "13:1"}),  # the same content: a skipped duplicate
        NewRun("hooks", Origin.HOOK, "/spool/1", "h1", "key-1", context={"hook": {"fields": {"n": (1, 2.5)}}}),
        manual(context={"tick": None}, max_attempts=5),
        manual(dry_run=True),
        file_run("/in/dry.txt", "d2", dry_run=True),
    ]
    for new in news:
        clock.advance(1.234567)  # microseconds too: stored and read back as they were
        run, _ = store.enqueue(new)
        assert run == store.get(run.id)


def test_enqueue_same_key_same_path_is_not_created(store):
    first, _ = store.enqueue(file_run("/in/a.pdf"))
    again, created = store.enqueue(file_run("/in/a.pdf"))
    assert not created and again == first
    assert store.counts()[Q] == 1


def test_runs_without_key_are_never_deduplicated(store):
    a, created_a = store.enqueue(manual())
    b, created_b = store.enqueue(manual())
    assert created_a and created_b and a.id != b.id


def test_same_content_under_another_name_is_skipped_once(store, clock):
    first, _ = store.enqueue(file_run("/in/a.pdf"))
    dup, created = store.enqueue(file_run("/in/copy of a.pdf"))
    assert created
    assert dup.status == K and dup.input_path == "/in/copy of a.pdf"
    assert dup.error == f"duplicate of run {first.id} (same content)"
    assert dup.finished_at == clock.now and dup.dedupe_key == "abc|/in/copy of a.pdf"
    again, created = store.enqueue(file_run("/in/copy of a.pdf"))
    assert not created and again == dup
    assert store.counts() == {Q: 1, R: 0, S: 0, F: 0, K: 1}
    # The same content in another workflow is not a duplicate.
    assert store.enqueue(file_run("/in/a.pdf", workflow="other"))[1]


def _finish(store, run, status=S, outputs=None):
    claimed = store.claim("w", 30, run_id=run.id)
    store.finish(claimed.id, "w", status, outputs=outputs or {})
    return store.get(run.id)


def test_the_same_file_dropped_again_gets_its_own_record_once_per_drop(store, clock):
    first, _ = store.enqueue(file_run("/in/a.pdf", context={"version": "7:100"}))
    # While the first run is not finished, seeing the file again (another version) is the same drop.
    assert store.enqueue(file_run("/in/a.pdf", context={"version": "8:200"})) == (first, False)
    first = _finish(store, first)
    # A rescan or restart sees the version the run took: nothing new.
    assert store.enqueue(file_run("/in/a.pdf", context={"version": "7:100"})) == (first, False)

    again, created = store.enqueue(file_run("/in/a.pdf", context={"version": "9:300"}))

    assert created and again.status == K and again.id != first.id
    assert again.error == f"duplicate of run {first.id} (the same file dropped again)"
    assert store.enqueue(file_run("/in/a.pdf", context={"version": "9:300"})) == (again, False)
    third, created = store.enqueue(file_run("/in/a.pdf", context={"version": "10:400"}))
    assert created and third.id not in (first.id, again.id)


def test_a_dry_run_is_marked_never_deduplicated_and_consumed_by_nothing(store, clock):
    dry, _ = store.enqueue(file_run("/in/a.pdf", dry_run=True))
    assert dry.dry_run and dry.dedupe_key is None
    dry = _finish(store, dry, outputs={"filed": {"action": "move_to", "destination": "/out/a.pdf"}})
    real, created = store.enqueue(file_run("/in/a.pdf"))
    assert created and real.status == Q and not real.dry_run  # not a duplicate of the dry run
    digest_dry, _ = store.enqueue(manual("digest", dry_run=True))
    _finish(store, digest_dry)

    assert store.last_succeeded("digest") is None
    assert store.succeeded_since("inbox", None, 10) == []
    assert [r.id for r in store.history(real_only=True)] == [real.id]
    assert {r.id for r in store.history()} == {dry.id, real.id, digest_dry.id}


def test_retry_of_a_succeeded_run_is_refused_and_changes_nothing(store):
    run, _ = store.enqueue(file_run("/in/a.pdf"))
    outputs = {"filed": {"action": "move_to", "destination": "/out/Letters/a.pdf"}}
    done = _finish(store, run, outputs=outputs)
    failed = _finish(store, store.enqueue(manual())[0], status=F)

    with pytest.raises(RetryRefused, match="never overwrites") as caught:
        store.retry([failed.id, run.id])

    assert caught.value.file == "/out/Letters/a.pdf"
    assert "gristmill trigger inbox /out/Letters/a.pdf" in str(caught.value)
    assert store.get(run.id) == done and store.get(failed.id).status == F


def test_file_names_that_are_not_utf8_round_trip_exactly(store):
    name = os.fsdecode(b"/in/caf\xe9 \xff.txt")
    run, _ = store.enqueue(file_run(name, context={"version": "1:1"}))
    dup, _ = store.enqueue(file_run(os.fsdecode(b"/in/copy \xe9.txt")))
    store.skip(run.id, f"{name} was removed")

    assert store.get(run.id).input_path == name
    assert os.fsencode(store.get(run.id).input_path) == b"/in/caf\xe9 \xff.txt"
    assert store.get(run.id).error == f"{name} was removed"
    assert store.get(dup.id).dedupe_key == "abc|" + os.fsdecode(b"/in/copy \xe9.txt")
    assert store.enqueue(file_run(os.fsdecode(b"/in/copy \xe9.txt")))[0] == store.get(dup.id)


def test_enqueue_leaves_no_gaps_in_ids(store):
    store.enqueue(file_run("/in/a.pdf"))
    for _ in range(3):
        store.enqueue(file_run("/in/a.pdf"))
    assert store.enqueue(manual())[0].id == 2


def test_known(store):
    run, _ = store.enqueue(file_run("/in/a.pdf", digest="d1"))
    assert store.known("inbox", "d1") == run
    assert store.known("inbox", "nope") is None
    assert store.known("other", "d1") is None


# -- claim ------------------------------------------------------------------------------------


def test_claim_returns_none_when_empty(store):
    assert store.claim("w1", 30) is None


def test_claim_takes_the_oldest_and_leases_it(store, clock):
    ids = [store.enqueue(manual())[0].id for _ in range(3)]
    run = store.claim("w1", 30)
    assert run.id == ids[0]
    assert (run.status, run.attempts, run.lease_owner) == (R, 1, "w1")
    assert run.started_at == clock.now
    assert run.lease_expires_at == clock.now + timedelta(seconds=30)
    assert [store.claim("w1", 30).id for _ in range(2)] == ids[1:]
    assert store.claim("w1", 30) is None


def test_claim_respects_not_before(store, clock):
    store.enqueue(manual())
    first = store.claim("w1", 30)
    store.release(first.id, "w1", not_before=clock.now + timedelta(seconds=60))
    second, _ = store.enqueue(manual())
    assert store.claim("w1", 30).id == second.id
    assert store.claim("w1", 30) is None
    assert store.next_due() == clock.now + timedelta(seconds=60)
    clock.advance(60)
    assert store.next_due() is None
    assert store.claim("w1", 30).id == first.id


def test_claim_among_workflows(store):
    store.enqueue(manual("a"))
    b, _ = store.enqueue(manual("b"))
    assert store.claim("w1", 30, workflows=["b", "c"]).id == b.id
    assert store.claim("w1", 30, workflows=["b"]) is None
    assert store.claim("w1", 30, workflows=[]) is None


def test_claim_a_given_run(store, clock):
    first, _ = store.enqueue(manual())
    second, _ = store.enqueue(manual())
    run = store.claim("w1", 30)
    store.release(run.id, "w1", not_before=clock.now + timedelta(hours=1))
    assert store.claim("cli", 30, run_id=second.id).id == second.id
    assert store.claim("cli", 30, run_id=second.id) is None  # running already
    assert store.claim("cli", 30, run_id=first.id).id == first.id  # asked for: due or not
    assert store.claim("cli", 30, run_id=999) is None


@pytest.mark.parametrize("which", ["any", "among"])
def test_a_sqlite_claim_walks_the_queued_runs_index_not_the_history(tmp_path, which):
    # Cost per claim flat as the backlog and the history grow: no sort of every queued run, no walk
    # through a workflow's finished runs (BENCHMARKS.md, "The write path").
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    upgrade(engine)
    compiled = claim_statement(which, True).compile(dialect=engine.dialect)
    sql = str(compiled).replace("(__[POSTCOMPILE_b_names])", "(?)")
    with engine.connect() as conn:
        plan = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", (None,) * sql.count("?"))]
    engine.dispose()
    assert "SCAN runs USING INDEX ix_runs_queued_id" in plan, plan
    assert not any("TEMP B-TREE" in step for step in plan), plan


def test_concurrent_claims_take_each_run_exactly_once(store):
    ids = {store.enqueue(manual())[0].id for _ in range(200)}
    taken: list[list[int]] = [[] for _ in range(4)]

    def worker(n: int) -> None:
        while (run := store.claim(f"w{n}", 30)) is not None:
            taken[n].append(run.id)
            assert store.finish(run.id, f"w{n}", S)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    claimed = [run_id for ids_of_one in taken for run_id in ids_of_one]
    assert len(claimed) == len(set(claimed)) == 200
    assert set(claimed) == ids
    assert store.counts()[S] == 200


# -- fencing, finish, release -----------------------------------------------------------------


def test_finish_is_fenced_on_the_owner(store, clock):
    store.enqueue(manual())
    run = store.claim("w1", 30)
    assert not store.finish(run.id, "intruder", S)
    assert not store.renew(run.id, "intruder", 30)
    assert not store.save_outputs(run.id, "intruder", {"x": 1})
    assert store.save_outputs(run.id, "w1", {"summary": {"text": "hi"}})
    assert store.renew(run.id, "w1", 90)
    assert store.get(run.id).lease_expires_at == clock.now + timedelta(seconds=90)
    clock.advance(5)
    assert store.finish(run.id, "w1", F, error="it broke")
    done = store.get(run.id)
    assert (done.status, done.error, done.finished_at) == (F, "it broke", clock.now)
    assert (done.lease_owner, done.lease_expires_at) == (None, None)
    assert done.outputs == {"summary": {"text": "hi"}}
    assert not store.finish(run.id, "w1", S)


def test_finish_only_to_a_final_status(store):
    store.enqueue(manual())
    run = store.claim("w1", 30)
    with pytest.raises(InvalidTransition):
        store.finish(run.id, "w1", Q)
    assert store.finish(run.id, "w1", S, outputs={"a": 1})
    assert store.get(run.id).outputs == {"a": 1}


def test_stale_owner_cannot_finish_after_requeue(store, clock):
    store.enqueue(manual())
    run = store.claim("w1", 30)
    clock.advance(31)
    assert store.requeue_expired() == [run.id]
    assert not store.finish(run.id, "w1", S)
    again = store.claim("w2", 30)
    assert again.id == run.id and again.attempts == 2
    assert not store.finish(run.id, "w1", S)
    assert store.finish(run.id, "w2", S)


def test_release_with_and_without_refund(store, clock):
    store.enqueue(manual())
    run = store.claim("w1", 30)
    later = clock.now + timedelta(seconds=10)
    assert store.release(run.id, "w1", not_before=later, error="model server down", refund_attempt=True)
    back = store.get(run.id)
    assert (back.status, back.attempts, back.not_before, back.error) == (Q, 0, later, "model server down")
    assert (back.lease_owner, back.lease_expires_at) == (None, None)
    assert not store.release(run.id, "w1", not_before=None)
    clock.advance(10)
    run = store.claim("w1", 30)
    assert store.release(run.id, "w1", not_before=None)
    back = store.get(run.id)
    assert (back.attempts, back.error) == (1, "model server down")


def test_skip_only_queued(store, clock):
    run, _ = store.enqueue(manual())
    assert store.skip(run.id, "the file vanished before the run started")
    skipped = store.get(run.id)
    assert (skipped.status, skipped.finished_at) == (K, clock.now)
    assert skipped.error == "the file vanished before the run started"
    assert not store.skip(run.id, "again")
    store.enqueue(manual())
    running = store.claim("w1", 30)
    assert not store.skip(running.id, "too late")


# -- requeue_expired --------------------------------------------------------------------------


def test_requeue_expired_requeues_then_gives_up(store, clock):
    run, _ = store.enqueue(manual(max_attempts=2))
    store.claim("w1", 30)
    clock.advance(30)
    assert store.requeue_expired() == []  # expires at, not before
    clock.advance(1)
    assert store.requeue_expired() == [run.id]
    back = store.get(run.id)
    assert (back.status, back.attempts, back.lease_owner) == (Q, 1, None)
    store.claim("w1", 30)
    clock.advance(31)
    assert store.requeue_expired() == [run.id]
    failed = store.get(run.id)
    assert (failed.status, failed.finished_at) == (F, clock.now)
    assert failed.error == ("the worker stopped during this run 2 times (its lease lapsed each time); giving up")


def test_requeue_expired_leaves_live_leases(store, clock):
    store.enqueue(manual())
    store.enqueue(manual())
    short = store.claim("w1", 10)
    store.claim("w2", 100)
    clock.advance(11)
    assert store.requeue_expired() == [short.id]
    assert store.counts()[R] == 1


# -- retry ------------------------------------------------------------------------------------


def test_retry_requeues_failed_and_skipped_runs_only(store, clock):
    ids = [store.enqueue(manual())[0].id for _ in range(4)]
    for status in (F, F):
        run = store.claim("w", 30)
        store.save_outputs(run.id, "w", {"partial": True})
        store.finish(run.id, "w", status, error="bad")
    skipped = store.enqueue(manual())[0].id
    store.skip(skipped, "filtered")
    running = store.claim("w", 30).id
    queued = ids[3]
    assert store.retry([ids[0], ids[1], skipped, running, queued, ids[0]]) == [ids[0], ids[1], skipped]
    for run_id in (ids[0], ids[1], skipped):
        run = store.get(run_id)
        assert (run.status, run.attempts, run.error, run.not_before, run.outputs) == (Q, 0, None, None, {})
        assert (run.finished_at, run.lease_owner) == (None, None)
    assert store.get(running).status == R
    assert store.retry([]) == []


def test_retry_unknown_id_changes_nothing(store):
    run, _ = store.enqueue(manual())
    store.skip(run.id, "x")
    with pytest.raises(RunNotFound) as caught:
        store.retry([run.id, 999])
    assert caught.value.run_id == 999
    assert store.get(run.id).status == K


def test_a_write_that_fails_leaves_the_shared_write_connection_usable(store):
    # All writes of a process go through one connection: a failed one must be rolled back for the next.
    run, _ = store.enqueue(manual())
    with pytest.raises(RunNotFound):
        store.record_call(999, ModelCall(model="llama3.2", messages=[]), attempt=1)
    store.skip(run.id, "x")
    assert store.get(run.id).status == K
    assert store.calls(999) == []


def test_retry_failed(store):
    for workflow in ("a", "a", "b"):
        store.enqueue(manual(workflow))
    failed = []
    for _ in range(3):
        run = store.claim("w", 30)
        store.finish(run.id, "w", F, error="nope")
        failed.append(run.id)
    assert store.retry_failed(workflow="a") == failed[:2]
    assert store.retry_failed() == failed[2:]
    assert store.retry_failed() == []
    assert store.counts()[Q] == 3


# -- reading ----------------------------------------------------------------------------------


def test_get_unknown_raises(store):
    with pytest.raises(RunNotFound):
        store.get(42)


def test_list_newest_first_with_filters_and_limit(store, clock):
    made = []
    for workflow in ("a", "b", "a", "b", "a"):
        made.append(store.enqueue(manual(workflow))[0].id)
        clock.advance(1)
    same_time = [store.enqueue(manual("a"))[0].id for _ in range(2)]
    assert [r.id for r in store.history()] == same_time[::-1] + made[::-1]
    assert [r.id for r in store.history(workflow="b")] == [made[3], made[1]]
    assert [r.id for r in store.history(limit=2)] == same_time[::-1]
    run = store.claim("w", 30, workflows=["b"])
    store.finish(run.id, "w", F)
    assert [r.id for r in store.history(status=F)] == [run.id] == [made[1]]
    assert [r.id for r in store.history(workflow="b", status=Q)] == [made[3]]


def test_counts(store):
    assert store.counts() == dict.fromkeys(RunStatus, 0)
    for workflow in ("a", "a", "b"):
        store.enqueue(manual(workflow))
    store.claim("w", 30)
    assert store.counts() == {Q: 2, R: 1, S: 0, F: 0, K: 0}
    assert store.counts(workflow="a") == {Q: 1, R: 1, S: 0, F: 0, K: 0}
    assert store.counts(workflow="zzz") == dict.fromkeys(RunStatus, 0)


def test_the_queue_and_the_runs_ended_since_a_moment(store, clock):
    # What the progress line and the heartbeat's status read, instead of a count of every run recorded.
    assert store.in_queue() == {Q: 0, R: 0} and store.ended_since(clock.now) == {S: 0, F: 0, K: 0}
    ids = [store.enqueue(manual())[0].id for _ in range(5)]
    store.finish(store.claim("w", 30).id, "w", S)  # ended before the moment
    clock.advance(10)
    since = store.now()
    assert since == clock.now
    store.finish(store.claim("w", 30).id, "w", F)  # ended at the moment itself: counted
    clock.advance(5)
    assert store.skip(ids[2], "not wanted")
    store.claim("w", 30)
    store.enqueue(manual())
    assert store.ended_since(since) == {S: 0, F: 1, K: 1}
    assert store.ended_since(since - timedelta(seconds=60)) == {S: 1, F: 1, K: 1}
    assert store.ended_since(clock.now + timedelta(seconds=1)) == {S: 0, F: 0, K: 0}
    assert store.in_queue() == {Q: 2, R: 1}
    assert store.retry([ids[1]]) == [ids[1]]  # queued again: no longer ended
    assert store.ended_since(since) == {S: 0, F: 0, K: 1} and store.in_queue() == {Q: 3, R: 1}


def test_sqlite_counts_for_the_progress_line_read_only_recent_or_waiting_runs(tmp_path, clock):
    # Flat as the history grows: neither count walks every run ever recorded (BENCHMARKS.md, "Cost per
    # run as the history grows"); a GROUP BY status made the planner walk the status index through all of them.
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    upgrade(engine)
    store, seen = RunStore(engine, clock=clock), []
    listen = lambda conn, cursor, sql, params, context, many: seen.append((sql, params))  # noqa: E731
    event.listen(engine, "before_cursor_execute", listen)
    store.ended_since(clock.now)
    store.in_queue()
    event.remove(engine, "before_cursor_execute", listen)
    plans = []
    with engine.connect() as conn:
        for sql, params in [(sql, params) for sql, params in seen if sql.lstrip().upper().startswith("SELECT")]:
            plans.append([row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)])
    engine.dispose()
    assert plans[0] == ["SEARCH runs USING COVERING INDEX ix_runs_finished_at_status (finished_at>?)"], plans
    assert plans[1] == ["SEARCH runs USING COVERING INDEX ix_runs_status_not_before_id (status=?)"], plans


def test_record_call_and_calls_round_trip(store, clock):
    run, _ = store.enqueue(manual())
    store.claim("w", 30)
    first = ModelCall(
        model="llama3.2",
        messages=[{"role": "system", "content": "Classify."}, {"role": "user", "content": "é ✓"}],
        options={"num_ctx": 8192, "temperature": 0},
        format={"type": "object", "properties": {"label": {"type": "string"}}},
        step_id="kind", started_at=clock.now - timedelta(seconds=2), answer='{"label": "invoice"}',
        thinking="hmm", prompt_tokens=120, completion_tokens=9, total_duration_ns=3_000_000_000_000,
        load_duration_ns=1, prompt_eval_duration_ns=2, eval_duration_ns=3, wall_ms=812.5,
    )  # fmt: skip
    second = ModelCall(model="llama3.2", messages=[], step_id="summary", error="timed out")
    first_id = store.record_call(run.id, first, attempt=1)
    second_id = store.record_call(run.id, second, attempt=2)
    assert second_id > first_id
    got = store.calls(run.id)
    assert got[0] == ModelCall(**{**first.__dict__, "id": first_id, "attempt": 1})
    assert got[1].id == second_id and got[1].attempt == 2
    assert got[1].format is None and got[1].options == {} and got[1].started_at == clock.now
    assert store.calls(999) == []
    with pytest.raises(RunNotFound):
        store.record_call(999, second, attempt=1)


def test_deferred_calls_are_stored_with_the_runs_next_write_in_order(store):
    run, _ = store.enqueue(manual())
    store.claim("w", 30)
    for n in range(3):
        store.defer_call(run.id, ModelCall(model="llama3.2", messages=[], step_id=f"s{n}"), attempt=1)
    assert store.renew(run.id, "w", 30)  # the heartbeat's renewal leaves them to the worker's next write
    assert store.calls(run.id) == []
    assert store.save_outputs(run.id, "w", {"s0": {"text": "a"}})
    assert [call.step_id for call in store.calls(run.id)] == ["s0", "s1", "s2"]
    store.defer_call(run.id, ModelCall(model="llama3.2", messages=[], step_id="s3"), attempt=1)
    assert store.finish(run.id, "w", S)
    assert [call.step_id for call in store.calls(run.id)] == ["s0", "s1", "s2", "s3"]


def test_deferred_calls_are_stored_even_when_the_run_was_taken_over(store, clock):
    run, _ = store.enqueue(manual())
    store.claim("w1", 30)
    store.defer_call(run.id, ModelCall(model="llama3.2", messages=[], step_id="kind"), attempt=1)
    clock.advance(31)
    store.requeue_expired()
    assert not store.save_outputs(run.id, "w1", {"kind": {"label": "x"}})  # as when each call was recorded at once
    assert [(call.step_id, call.attempt) for call in store.calls(run.id)] == [("kind", 1)]
    assert store.get(run.id).outputs == {}


def test_deferred_calls_of_a_run_that_is_gone_are_dropped(store):
    run, _ = store.enqueue(manual())
    store.defer_call(999, ModelCall(model="llama3.2", messages=[]), attempt=1)
    assert not store.release(999, "w", not_before=None)
    assert store.calls(999) == []
    store.claim("w", 30)
    assert store.release(run.id, "w", not_before=None)  # the write connection is usable after it


def test_finish_and_claim_ends_one_run_and_leases_the_next_in_one_write(store, clock):
    first, _ = store.enqueue(manual("a"))
    second, _ = store.enqueue(manual("b"))
    third, _ = store.enqueue(manual("c"))
    store.claim("w", 30)
    store.defer_call(first.id, ModelCall(model="llama3.2", messages=[]), attempt=1)
    clock.advance(2)
    done, claimed = store.finish_and_claim(first.id, "w", S, outputs={"a": 1}, lease_seconds=30, workflows=["a", "c"])
    assert done and claimed.id == third.id
    assert (claimed.status, claimed.lease_owner, claimed.started_at) == (R, "w", clock.now)
    ended = store.get(first.id)
    assert (ended.status, ended.outputs, ended.finished_at, ended.lease_owner) == (S, {"a": 1}, clock.now, None)
    assert len(store.calls(first.id)) == 1
    assert store.finish_and_claim(third.id, "w", S, outputs={}, lease_seconds=30, workflows=["a"]) == (True, None)
    assert store.get(second.id).status == Q
    # Fenced like finish: an intruder ends nothing, and may still take the next run.
    done, claimed = store.finish_and_claim(third.id, "intruder", S, outputs={}, lease_seconds=30)
    assert not done and claimed.id == second.id


def test_timestamps_are_aware_utc(store):
    from zoneinfo import ZoneInfo

    store.enqueue(manual())
    run = store.claim("w", 30)
    berlin = datetime(2026, 7, 1, 14, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    store.release(run.id, "w", not_before=berlin)
    stored = store.get(run.id).not_before
    assert stored == berlin and stored.tzinfo == UTC and stored.hour == 12
    store.enqueue(manual())
    other = store.claim("w", 30)
    with pytest.raises(StatementError, match="naive"):
        store.release(other.id, "w", not_before=datetime(2026, 1, 1))
    assert store.get(other.id).status == R


def test_meta(store):
    assert store.get_meta("schedule:digest") is None
    store.set_meta("schedule:digest", "2026-03-01T07:00:00+00:00")
    store.set_meta("schedule:digest", "2026-03-02T07:00:00+00:00")
    assert store.get_meta("schedule:digest") == "2026-03-02T07:00:00+00:00"


def test_the_lossless_form_is_one_to_one():
    from daemon.files import lossless

    for value in ("plain.txt", "Привет мир.pdf", os.fsdecode(b"caf\xe9"), lossless.PREFIX + "x", ""):
        stored = lossless.encode(value)
        assert lossless.decode(stored) == value
        stored.encode("utf-8")  # always storable as text
    assert lossless.encode("Привет мир.pdf") == "Привет мир.pdf"  # ordinary names stay readable
    assert lossless.printable(os.fsdecode(b"caf\xe9.txt")) == "caf\ufffd.txt"


# -- a renamed file, and the search index at the finish


def test_a_renamed_file_is_followed_only_by_a_run_that_has_not_started(store):
    waiting, _ = store.enqueue(file_run("/in/a.txt", "d1"))
    followed, created = store.enqueue(file_run("/in/b.txt", "d1"), gone=lambda path: path == "/in/a.txt")
    assert created and followed.id == waiting.id and followed.input_path == "/in/b.txt"

    queued, _ = store.enqueue(file_run("/in/c.txt", "d2"))
    running = store.claim("w1", 60, run_id=queued.id)
    assert running is not None and running.outputs == {}  # started, nothing recorded yet
    copy, created = store.enqueue(file_run("/in/d.txt", "d2"), gone=lambda path: path == "/in/c.txt")
    assert created and copy.id != running.id and copy.status is K  # not followed: it is running
    assert copy.error == f"duplicate of run {running.id} (same content)"
    assert store.get(running.id).input_path == "/in/c.txt"


def test_a_followed_run_is_found_by_its_files_new_name(store):
    from daemon.store.search import search

    waiting, _ = store.enqueue(file_run("/in/draft.txt", "d1"))
    store.enqueue(file_run("/in/contract.txt", "d1"), gone=lambda path: path == "/in/draft.txt")
    assert [hit.run_id for hit in search(store._engine, "contract")] == [waiting.id]
    assert search(store._engine, "draft") == []


# -- a batch of files in one transaction


def test_a_batch_is_queued_in_one_transaction_each_file_as_enqueue_would(store, clock):
    known, _ = store.enqueue(file_run("/in/known.txt", "d1"))
    waiting, _ = store.enqueue(file_run("/in/old name.txt", "d3"))
    done = _finish(store, store.enqueue(file_run("/in/done.txt", "d4", context={"version": "1:1"}))[0])
    batch = [
        file_run("/in/known.txt", "d1"),  # seen before: nothing new
        file_run("/in/b.txt", "d2"),  # new
        file_run("/in/copy of b.txt", "d2"),  # the same content as the file before it in this batch
        file_run("/in/new name.txt", "d3"),  # renamed: its unstarted run follows it
        file_run("/in/done.txt", "d4", context={"version": "2:2"}),  # the same file dropped again
    ]
    gone = {"/in/old name.txt"}

    with counting_commits(store.engine) as commits:
        found = store.enqueue_many(batch, gone=gone.__contains__)

    assert len(commits) == 1
    (same, a), (new, b), (copy, c), (moved, d), (again, e) = found
    assert (same, a) == (known, False)
    assert b and (new.status, new.input_path) == (Q, "/in/b.txt")
    assert c and copy.status == K and copy.error == f"duplicate of run {new.id} (same content)"
    assert d and (moved.id, moved.status, moved.input_path) == (waiting.id, Q, "/in/new name.txt")
    assert e and again.status == K and again.error == f"duplicate of run {done.id} (the same file dropped again)"
    assert again.dedupe_key == "d4|/in/done.txt|2:2"
    assert [r.id for r in (new, copy, again)] == sorted(r.id for r in (new, copy, again))  # in the batch's order
    # The same batch offered again (a rescan, a restart) finds every record and makes none.
    assert store.enqueue_many(batch, gone=gone.__contains__) == [(run, False) for run, _ in found]
    assert store.enqueue_many([]) == []


def test_the_same_content_twice_in_one_batch_is_one_queued_run_and_one_duplicate(store):
    (first, a), (second, b) = store.enqueue_many([file_run("/in/a.txt", "d1"), file_run("/in/b.txt", "d1")])
    assert a and b and (first.status, second.status) == (Q, K)
    assert second.error == f"duplicate of run {first.id} (same content)"
    assert store.counts()[Q] == 1 and store.claim("w", 60).id == first.id


def test_the_outputs_a_run_finishes_with_are_found_by_search(store):
    from daemon.store.search import search

    store.enqueue(file_run("/in/a.txt", "d1"))
    run = store.claim("w1", 60)
    assert store.finish(run.id, "w1", S, outputs={"summary": {"text": "a zebra crossing"}})
    assert [hit.run_id for hit in search(store._engine, "zebra")] == [run.id]

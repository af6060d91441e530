"""Leases and resumes with real processes: a late worker stops, a resumed run does not ask again.

README, "Crashes, outages and stopping": "A late worker cannot overwrite a newer attempt: every write
names the lease it holds" and "Each step's output is stored as it finishes, so a retry does not ask
the model again for steps already done". The store's fencing is tested in test_store.py; these show
the runner and the pool act on it, across a paused process and a SIGKILL.
"""

from __future__ import annotations

import signal

from daemon.domain import RunStatus
from tests.support import INVOICE, wait_for
from tests.test_crash import DEADLINE, all_runs, finished, home, read_store  # noqa: F401  (home: a fixture)


def _chats(standin) -> list[dict]:
    return [r["body"] for r in standin.recorded() if r["path"] == "/api/chat"]


def _files(home) -> list[str]:
    """Every file in the inbox and the documents folder, relative to the home."""
    return sorted(str(p.relative_to(home.root)) for folder in (home.inbox, home.docs) for p in folder.rglob("*"))


def test_a_worker_whose_lease_was_taken_mid_run_stops_and_touches_nothing(home, standin):
    standin.config.latency = 3.0
    home.drop("invoice.txt", INVOICE)
    late = home.daemon().start()
    wait_for(lambda: standin.calls_in_flight >= 1, timeout=DEADLINE, what="the summary's model call in flight")
    late.send(signal.SIGSTOP)  # a paused worker (a suspended laptop, a long GC): its lease lapses
    store = read_store(home)
    try:
        (run_id,) = wait_for(store.requeue_expired, timeout=DEADLINE, what="the paused worker's lease to lapse")
        taken = store.claim("another-worker", 3600, run_id=run_id)
        assert taken is not None and taken.attempts == 2
        files_before, chats_before = _files(home), len(_chats(standin))
        late.send(signal.SIGCONT)
        gone = ("is no longer this worker's", "was taken over by another worker")  # it stops; or it went on
        wait_for(lambda: any(line in late.log for line in gone), timeout=DEADLINE, what="the late worker to give up")
        assert gone[0] in late.log, late.log

        assert len(_chats(standin)) == chats_before  # it asked the model nothing more
        assert _files(home) == files_before == ["Inbox/invoice.txt"]  # it moved and wrote nothing
        assert store.get(run_id) == taken  # not one field of the run changed under its new owner
        assert taken.status is RunStatus.RUNNING and taken.outputs == {}
        assert len(store.calls(run_id)) <= chats_before  # at most the call it had in flight is recorded
    finally:
        late.send(signal.SIGCONT)
        store.engine.dispose()
    assert late.stop() == 0


def test_a_run_resumed_after_sigkill_does_not_ask_the_model_again_for_finished_steps(home, standin):
    standin.config.latency = 2.0
    home.drop("invoice.txt", INVOICE)
    first = home.daemon().start()
    # The summary is answered and stored; the classification's call is in flight when the process dies.
    wait_for(lambda: len(_chats(standin)) == 2 and standin.calls_in_flight == 1, timeout=DEADLINE,
             what="the second model call in flight")  # fmt: skip
    first.send(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    (killed,) = all_runs(home)
    assert killed.status is RunStatus.RUNNING and set(killed.outputs) == {"summary"}
    standin.config.latency = 0.0

    second = home.daemon().start()
    wait_for(lambda: finished(home, 1), timeout=DEADLINE, what="the resumed run to finish")
    assert second.stop() == 0

    (run,) = all_runs(home)
    assert run.status is RunStatus.SUCCEEDED, (run.status, run.error)
    chats = _chats(standin)
    summaries = [c for c in chats if not c.get("format")]  # the summary asks for prose, classify for a schema
    assert len(summaries) == 1, [c["messages"][-1]["content"][:80] for c in chats]
    assert len(chats) == 3  # the summary once, the classification twice (the killed call and its retry)
    assert run.outputs["summary"] == killed.outputs["summary"]

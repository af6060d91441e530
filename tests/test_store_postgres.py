"""What only PostgreSQL has: claims that pass each other, wake-ups across processes, a server that goes away."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter

import pytest
from sqlalchemy import text

from daemon.domain import NewRun, Origin, RunStatus
from daemon.errors import StoreError, UsageError
from daemon.store import RunStore, make_engine
from daemon.store.migrate import upgrade
from daemon.store.wakeup import ListeningWakeups
from tests.support import REPO, free_port, wait_for


def manual(workflow: str = "inbox") -> NewRun:
    return NewRun(workflow, Origin.MANUAL)


def file_run(path: str, digest: str) -> NewRun:
    return NewRun("inbox", Origin.FILE, path, digest, digest)


@pytest.fixture
def engines(pg_url):
    """Engines of their own, as separate nodes would have; the first one migrated."""
    made = []

    def make():
        made.append(make_engine(pg_url))
        return made[-1]

    upgrade(make())
    yield make
    for engine in made:
        engine.dispose()


def test_a_claim_passes_a_row_another_transaction_holds(engines):
    store = RunStore(engines())
    first, _ = store.enqueue(manual())
    second, _ = store.enqueue(manual())
    holder = engines().connect()
    holder.begin()
    holder.execute(text("SELECT id FROM runs WHERE id = :id FOR UPDATE"), {"id": first.id})
    got: list = []
    claimer = threading.Thread(target=lambda: got.append(store.claim("w1", 30)))
    claimer.start()
    claimer.join(60)
    try:
        assert not claimer.is_alive(), "the claim waited for the other transaction's row lock"
        assert got[0].id == second.id
    finally:
        holder.rollback()
        holder.close()
    assert store.claim("w1", 30).id == first.id


def test_many_nodes_many_threads_claim_each_run_exactly_once(engines):
    stores = [RunStore(engines()) for _ in range(4)]
    ids = {stores[0].enqueue(manual())[0].id for _ in range(400)}
    taken: list[tuple[int, str]] = []
    lock = threading.Lock()

    def worker(store: RunStore, owner: str) -> None:
        while (run := store.claim(owner, 30)) is not None:
            with lock:
                taken.append((run.id, owner))
            assert store.finish(run.id, owner, RunStatus.SUCCEEDED)

    threads = [
        threading.Thread(target=worker, args=(store, f"node{n}-w{t}"))
        for n, store in enumerate(stores)
        for t in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    claimed = Counter(run_id for run_id, _ in taken)
    assert set(claimed) == ids and set(claimed.values()) == {1}
    assert len({owner for _, owner in taken}) > 4  # the work really was spread over the threads
    done = stores[0].history(limit=1000)
    assert {run.status for run in done} == {RunStatus.SUCCEEDED} and {run.attempts for run in done} == {1}


def test_wakeups_ring_once_per_run_made_claimable_anywhere(engines):
    listener_store, other = RunStore(engines()), RunStore(engines())
    rings = threading.Semaphore(0)
    count = Counter()

    def ring() -> None:
        count["rings"] += 1
        rings.release()

    subscription = listener_store.wakeups(ring)
    try:
        assert isinstance(subscription, ListeningWakeups) and subscription.wait_listening(30)
        _drain(rings)  # the rings every (re)connect gives
        count.clear()

        first, _ = other.enqueue(file_run("/in/a.txt", "d1"))
        _expect(rings, 1)
        other.enqueue(file_run("/in/a.txt", "d1"))  # known already: nothing new
        other.enqueue(file_run("/in/copy.txt", "d1"))  # a duplicate, recorded as skipped
        second, _ = other.enqueue(manual())
        _expect(rings, 1)
        run = other.claim("w", 30)
        other.release(run.id, "w", not_before=None)
        _expect(rings, 1)
        for _ in range(2):
            taken = other.claim("w", 30)
            other.finish(taken.id, "w", RunStatus.FAILED, error="x")
        assert other.retry_failed() == sorted([first.id, second.id])
        _expect(rings, 2)
        assert count["rings"] == 5
    finally:
        subscription.close()
    assert not subscription.alive()


def test_wakeups_come_back_after_the_server_restarts(engines, pg_server):
    store = RunStore(engines())
    rings = threading.Semaphore(0)
    subscription = store.wakeups(rings.release)
    try:
        assert subscription.wait_listening(30)
        _drain(rings)
        pg_server.restart()
        wait_for(lambda: subscription.connects == 2, timeout=60, what="the listener to reconnect")
        _expect(rings, 1)  # after a reconnect every idle worker is rung once
        _drain(rings)
        store.enqueue(manual())  # the engine's pool reconnects by itself (pre-ping)
        _expect(rings, 1)
    finally:
        subscription.close()


def test_a_connection_lost_mid_transaction_is_a_store_error_then_the_pool_recovers(engines, pg_server):
    store = RunStore(engines())
    store.enqueue(manual())
    engine = engines()
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        pg_server.restart()
        with pytest.raises(StoreError, match="connection to PostgreSQL was lost.*reconnects by itself"):
            conn.execute(text("SELECT 1"))
    assert store.claim("w", 30) is not None  # pooled connections from before the restart are replaced


def test_an_unreachable_server_is_one_sentence():
    engine = make_engine(f"postgresql+psycopg://gristmill@127.0.0.1:{free_port()}/gristmill?connect_timeout=5")
    with pytest.raises(StoreError, match=r"server at 127\.0\.0\.1:\d+ cannot be reached .*check that it runs"):
        upgrade(engine)
    engine.dispose()


def test_a_missing_database_is_one_sentence(pg_server):
    engine = make_engine(pg_server.url("nowhere"))
    with pytest.raises(StoreError, match=r'database "nowhere" does not exist.*createdb nowhere'):
        upgrade(engine)
    engine.dispose()


def test_plain_postgresql_urls_use_psycopg_and_other_drivers_are_refused():
    assert make_engine("postgresql://u@127.0.0.1/db").dialect.driver == "psycopg"
    with pytest.raises(UsageError, match=r"psycopg 3, not postgresql\+psycopg2"):
        make_engine("postgresql+psycopg2://u@127.0.0.1/db")


def test_sqlite_has_nothing_to_listen_to(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    store = RunStore(engine)
    rung = []
    subscription = store.wakeups(lambda: rung.append(1))
    store.enqueue(manual())
    subscription.close()
    engine.dispose()
    assert rung == []  # the intake wakes its own workers on SQLite


def test_a_postgresql_url_without_the_extra_is_one_sentence_and_exit_2(tmp_path):
    # Hide psycopg from a real CLI process, as an install without the extra would.
    code = "import sys; sys.modules['psycopg'] = None; from daemon.cli import main; main()"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")}
    env.update(PYTHONPATH=str(REPO), GRISTMILL_DATABASE_URL="postgresql://u@127.0.0.1/gristmill")
    done = subprocess.run([sys.executable, "-c", code, "runs"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "gristmill: the database URL names PostgreSQL, but the postgres extra is not installed; "
        "run: pip install 'gristmill[postgres]'"
    )


def _expect(rings: threading.Semaphore, count: int) -> None:
    for _ in range(count):
        assert rings.acquire(timeout=30), "a wake-up did not arrive"


def _drain(rings: threading.Semaphore) -> None:
    while rings.acquire(timeout=0.5):
        pass

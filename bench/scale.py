"""The `scale` scenario: several gristmill processes on one PostgreSQL database, one queue.

1. 1, 2 and 3 worker nodes (4 model slots each) against a stand-in with 12 slots at 200 ms: runs/s
   should grow with the nodes, and 3 nodes should keep the stand-in ≥ 95 % busy (ideal 60 runs/s).
2. An instant model, 4 worker nodes × 4 workers: runs/s end to end and runs claimed twice.
3. The claim itself: 4 processes × 4 threads claiming and finishing queued runs (no daemon, no
   model): claims/s, p50/p99 claim latency and ids claimed twice.

The backlog is queued first, by an intake node, under a workflow name no worker knows; renaming it
(with a NOTIFY, as the store sends) releases it to every worker at the same instant.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import func, select, text, update

from bench.harness import BenchHome, Daemon, wait_until
from bench.scenarios import CLASSIFY_WORKFLOW, DOC, Sizes, _direct_calls, _pct, standin
from daemon.store import make_engine
from daemon.store.migrate import upgrade
from daemon.store.tables import model_calls, runs
from daemon.store.wakeup import CHANNEL

LATENCY, SLOTS, SLOTS_PER_NODE = 0.2, 12, 4


@contextmanager
def postgres() -> Iterator[object]:
    """A throw-away PostgreSQL server (the tests' own, tests/pgserver.py)."""
    from tests.pgserver import PgServer

    server = PgServer().start()
    try:
        yield server
    finally:
        server.stop()


def scale(sizes: Sizes) -> dict[str, float]:
    """The three measurements above, each on a fresh database of one server."""
    result: dict[str, float] = {}
    with postgres() as server:
        with standin("--latency", str(LATENCY), "--slots", str(SLOTS)) as url:
            for nodes in (1, 2, 3):
                rate, doubles = _workers(server, url, nodes, SLOTS_PER_NODE, sizes.scale_files)
                result[f"runs_per_s_{nodes}_nodes"] = rate
                result[f"utilisation_{nodes}_nodes"] = rate / (SLOTS / LATENCY)
                result["double_claims"] = result.get("double_claims", 0) + doubles
            # Baseline, same stand-in, same minute: the client alone from 12 threads, no daemon, no database.
            result["baseline_direct_calls_per_s_12"] = _direct_calls(url, sizes.scale_files, threads=SLOTS)
        result["ratio_3_nodes_to_direct"] = result["runs_per_s_3_nodes"] / result["baseline_direct_calls_per_s_12"]
        result["speedup_3_over_1"] = result["runs_per_s_3_nodes"] / result["runs_per_s_1_nodes"]
        with standin("--slots", "16") as url:
            rate, doubles = _workers(server, url, 4, 3, sizes.claim_files)  # concurrency 3: 4 workers each
        result["instant_runs_per_s_4x4"] = rate
        result["double_claims"] += doubles
        result.update(_raw_claims(server, sizes.claim_runs))
    return result


def _workers(server, standin_url: str, nodes: int, concurrency: int, files: int) -> tuple[float, int]:
    """Stage `files` runs, release them to `nodes` worker processes; (runs/s, runs done more than once)."""
    home, url = BenchHome(), server.database()
    workers: list[Daemon] = []
    try:
        _stage(home, standin_url, url, files)
        env = {"GRISTMILL_DATABASE_URL": url}
        workers = [Daemon(home, standin_url, concurrency=concurrency, args=("--role", "worker"), env=env)
                   for _ in range(nodes)]  # fmt: skip
        for worker in workers:
            worker.wait_ready()
        _release(url, files)
        wait_until(lambda: _finished(url) >= files, 900, f"{files} runs on {nodes} nodes")
        return _rate_and_doubles(url)
    finally:
        for worker in workers:
            worker.stop()
        shutil.rmtree(home.root, ignore_errors=True)
        server.drop(url)


def _stage(home: BenchHome, standin_url: str, url: str, files: int) -> None:
    """An intake node queues every file under the workflow `staged`, which no worker loads."""
    home.workflow("staged", CLASSIFY_WORKFLOW.format(name="staged", folder="Inbox"))
    for n in range(files):
        (home.inbox / f"doc-{n:05d}.txt").write_text(DOC.format(n=n))
    intake = Daemon(home, standin_url, args=("--role", "intake"), env={"GRISTMILL_DATABASE_URL": url})
    wait_until(lambda: _count(url) >= files, 600, "the intake node to queue the backlog")
    intake.stop()
    (home.root / "workflows" / "staged.yaml").unlink()
    home.workflow("bench", CLASSIFY_WORKFLOW.format(name="bench", folder="Inbox"))


def _release(url: str, files: int) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(update(runs).where(runs.c.workflow == "staged").values(workflow="bench"))
            conn.execute(text("SELECT pg_notify(:channel, :count)"), {"channel": CHANNEL, "count": str(files)})
    finally:
        engine.dispose()


def _query(url: str, stmt):
    engine = make_engine(url)
    try:
        upgrade(engine)
        with engine.connect() as conn:
            return conn.execute(stmt).all()
    finally:
        engine.dispose()


def _count(url: str) -> int:
    return _query(url, select(func.count()).select_from(runs))[0][0]


def _finished(url: str) -> int:
    return _query(url, select(func.count()).where(runs.c.finished_at.is_not(None)))[0][0]


def _rate_and_doubles(url: str) -> tuple[float, int]:
    (first, last, total, twice), = _query(url, select(
        func.min(runs.c.started_at), func.max(runs.c.finished_at), func.count(),
        func.count().filter(runs.c.attempts != 1),
    ))  # fmt: skip
    calls = _query(url, select(model_calls.c.run_id, func.count()).group_by(model_calls.c.run_id))
    twice += sum(1 for _, n in calls if n != 1)
    return total / (last - first).total_seconds(), twice


def _raw_claims(server, count: int, processes: int = 4, threads: int = 4) -> dict[str, float]:
    """`count` queued runs, claimed and finished by processes × threads claimers at once."""
    url = server.database()
    try:
        engine = make_engine(url)
        upgrade(engine)
        now = datetime.now(UTC)
        row = {
            "workflow": "w",
            "status": "queued",
            "trigger": "manual",
            "context": {},
            "outputs": {},
            "created_at": now,
        }
        with engine.begin() as conn:
            conn.execute(runs.insert(), [row] * count)
        engine.dispose()
        argv = [sys.executable, "-m", "bench.claimer", url, str(threads)]
        procs = [subprocess.Popen([*argv, f"node{n}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                 for n in range(processes)]  # fmt: skip
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        started = datetime.now(UTC)
        for proc in procs:  # every node is told to go before any output is read
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [json.loads(proc.communicate(timeout=900)[0]) for proc in procs]
        elapsed = (datetime.now(UTC) - started).total_seconds()
    finally:
        server.drop(url)
    claimed = Counter(run_id for out in outputs for run_id, _ in out["claims"])
    latencies = sorted(ms for out in outputs for ms in out["latencies_ms"])
    return {
        "claims_per_s_4x4": sum(claimed.values()) / elapsed,
        "claim_p50_ms": _pct(latencies, 50),
        "claim_p99_ms": _pct(latencies, 99),
        "claim_double_claims": sum(n - 1 for n in claimed.values()),
        "claim_missed": count - len(claimed),
    }

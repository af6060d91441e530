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
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select, text, update

from bench.harness import BenchHome, Daemon, cpu_seconds, wait_until
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


@dataclass
class Measured:
    """One release of the backlog to some worker nodes."""

    runs_per_s: float
    doubles: int  # runs claimed more than once, or with more than one model call
    daemon_cpu_ms: float  # per run, the worker nodes together
    postgres_cpu_ms: float  # per run, the server's processes


def scale(sizes: Sizes) -> dict[str, float]:
    """The three measurements above, each on a fresh database of one server."""
    result: dict[str, float] = {"load_1m_at_start": os.getloadavg()[0]}
    with postgres() as server:
        with standin("--latency", str(LATENCY), "--slots", str(SLOTS)) as url:
            for nodes in (1, 2, 3):
                got = _workers(server, url, nodes, SLOTS_PER_NODE, sizes.scale_files)
                result[f"runs_per_s_{nodes}_nodes"] = got.runs_per_s
                result[f"utilisation_{nodes}_nodes"] = got.runs_per_s / (SLOTS / LATENCY)
                result["double_claims"] = result.get("double_claims", 0) + got.doubles
            result["daemon_cpu_ms_per_run"] = got.daemon_cpu_ms
            result["postgres_cpu_ms_per_run"] = got.postgres_cpu_ms
            # Baseline, same stand-in, same minute: the client alone from 12 threads, no daemon, no database.
            result["baseline_direct_calls_per_s_12"] = _direct_calls(url, sizes.scale_files, threads=SLOTS)
        result["ratio_3_nodes_to_direct"] = result["runs_per_s_3_nodes"] / result["baseline_direct_calls_per_s_12"]
        result["speedup_3_over_1"] = result["runs_per_s_3_nodes"] / result["runs_per_s_1_nodes"]
        with standin("--slots", "16") as url:
            got = _workers(server, url, 4, 3, sizes.claim_files)  # concurrency 3: 4 workers each
        result["instant_runs_per_s_4x4"] = got.runs_per_s
        result["double_claims"] += got.doubles
        result.update(_raw_claims(server, sizes.claim_runs))
    return result


def _workers(server, standin_url: str, nodes: int, concurrency: int, files: int) -> Measured:
    """Stage `files` runs, release them to `nodes` worker processes, measure."""
    home, url = BenchHome(), server.database()
    workers: list[Daemon] = []
    try:
        _stage(home, standin_url, url, files)
        env = {"GRISTMILL_DATABASE_URL": url}
        workers = [Daemon(home, standin_url, concurrency=concurrency, args=("--role", "worker"), env=env)
                   for _ in range(nodes)]  # fmt: skip
        for worker in workers:
            worker.wait_ready()
        cpu, pg = sum(w.cpu() for w in workers), _server_cpu(server)
        _release(url, files)
        with _Counter(url) as counter:  # one connection, polled gently, so the watching costs next to nothing
            wait_until(lambda: counter.finished() >= files, 900, f"{files} runs on {nodes} nodes")
        cpu, pg = sum(w.cpu() for w in workers) - cpu, _server_cpu(server) - pg
        rate, doubles = _rate_and_doubles(url)
        return Measured(rate, doubles, cpu * 1000 / files, pg * 1000 / files)
    finally:
        for worker in workers:
            worker.stop()
        server.drop(url)


def _stage(home: BenchHome, standin_url: str, url: str, files: int) -> None:
    """An intake node queues every file under the workflow `staged`, which no worker loads."""
    home.workflow("staged", CLASSIFY_WORKFLOW.format(name="staged", folder="Inbox"))
    for n in range(files):
        (home.inbox / f"doc-{n:05d}.txt").write_text(DOC.format(n=n))
    intake = Daemon(home, standin_url, args=("--role", "intake"), env={"GRISTMILL_DATABASE_URL": url})
    with _Counter(url) as counter:
        wait_until(lambda: counter.queued() >= files, 600, "the intake node to queue the backlog")
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


class _Counter:
    """Counts finished runs over one connection, at most five times a second."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        upgrade(self.engine)  # the tables exist before the first look, whoever starts first

    def __enter__(self) -> _Counter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.engine.dispose()

    def queued(self) -> int:
        time.sleep(0.2)
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(runs)).scalar_one()

    def finished(self) -> int:
        time.sleep(0.2)
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).where(runs.c.finished_at.is_not(None))).scalar_one()


def _server_cpu(server) -> float:
    """CPU seconds used so far by the PostgreSQL server: the postmaster and its children."""
    main = int((server.data / "postmaster.pid").read_text().split()[0])
    total = cpu_seconds(main)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == main:
                total += cpu_seconds(int(stat.parent.name))
        except (OSError, ValueError):
            continue  # a process that ended meanwhile
    return total


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

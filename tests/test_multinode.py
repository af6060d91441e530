"""Several real `gristmill run` processes on one PostgreSQL database: one queue, one history.

Two nodes of role `all` and one `worker` share an inbox; one of the `all` nodes is SIGKILLed while
it holds runs, and every file still ends filed once. A schedule configured on three nodes fires once
per tick.
"""

from __future__ import annotations

import signal
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from daemon.domain import RunStatus
from daemon.store import make_engine
from daemon.store.nodes import NodeStore
from tests.support import Home, wait_for
from tests.test_crash import FAST, Daemon, all_runs, assert_one_outcome_each, fast_home

DEADLINE = 120.0
FILES = 150


@pytest.fixture
def cluster(tmp_path, standin, pg_url):
    """A home on PostgreSQL, and a way to start nodes on it; every node is killed after the test."""
    home = fast_home(tmp_path, standin.url)
    home.extra_env.update(FAST)
    home.extra_env["GRISTMILL_DATABASE_URL"] = pg_url
    nodes: list[Daemon] = []

    def start(*args: str) -> Daemon:
        nodes.append(Daemon(home).start(*args))
        return nodes[-1]

    yield home, start
    for node in nodes:
        node.kill()


def document(n: int) -> str:
    kind = ("invoice", "receipt", "letter")[n % 3]
    return f"Document {n}\nThis {kind} is number {n}. A {kind}, clearly a {kind}.\n"


def held_by(home: Home, pid: int) -> tuple[str, int]:
    """The node id of process `pid` and how many runs are running under its lease now."""
    engine = make_engine(home.db_url)
    try:
        (node,) = [node for node in NodeStore(engine).all_nodes() if node.pid == pid]
    finally:
        engine.dispose()
    return node.id, node.runs_in_hand


def test_three_nodes_one_killed_mid_way_every_file_filed_once(cluster, standin):
    home, start = cluster
    standin.config.latency, standin.config.slots = 0.1, 9
    victim, survivor, worker = start(), start(), start("--role", "worker")
    for node in (victim, survivor, worker):
        wait_for(lambda node=node: "gristmill ready" in node.log, timeout=DEADLINE, what="every node to be ready")
    files = {f"doc-{n:03d}.txt": document(n) for n in range(FILES)}
    for name, text in files.items():
        home.drop(name, text)

    killed_runs: set[int] = set()

    def frozen_holding_runs() -> bool:
        # Frozen first, then looked at: a node seen holding runs could otherwise finish them
        # all before the SIGKILL lands, and the kill would prove nothing. What it holds is read
        # while it is frozen: once it is dead, the survivors' heartbeat takes its runs back at once.
        victim.send(signal.SIGSTOP)
        victim_id, in_hand = held_by(home, victim.proc.pid)
        if in_hand > 0:
            killed_runs.update(run.id for run in all_runs(home) if run.lease_owner == victim_id)
            return True
        victim.send(signal.SIGCONT)
        return False

    wait_for(lambda: _succeeded(home) >= FILES // 5 and frozen_holding_runs(),
             timeout=DEADLINE, what="a fifth of the files done while the victim holds runs")  # fmt: skip
    victim.send(signal.SIGKILL)
    assert victim.wait() == -signal.SIGKILL
    assert killed_runs, "the killed node held no runs: the kill proved nothing"

    wait_for(lambda: _succeeded(home) == FILES, timeout=DEADLINE, what="every file to be filed")
    assert survivor.stop() == 0 and worker.stop() == 0

    assert_one_outcome_each(home, files)
    runs = all_runs(home)
    assert Counter(run.sha256 for run in runs if run.status is RunStatus.SUCCEEDED) == Counter(
        {run.sha256: 1 for run in runs}
    )
    # The dead node's runs were finished by the others (its attempt refunded when it died waiting on the model).
    assert {run.id for run in runs if run.status is RunStatus.SUCCEEDED} >= killed_runs
    assert "role worker" in worker.log and " succeeded in " in worker.log  # the worker node did its share


def test_a_schedule_on_three_nodes_fires_once_per_tick(cluster):
    home, start = cluster
    Path(home.workflows, "sort-inbox.yaml").unlink()
    home.write_workflow(
        "tick.yaml",
        "name: tick\ntrigger:\n  schedule: {every: 1s, overlap: queue}\nsteps:\n  - prompt: Say hello.\n",
    )
    nodes = [start() for _ in range(3)]
    for node in nodes:
        wait_for(lambda node=node: "gristmill ready" in node.log, timeout=DEADLINE, what="every node to be ready")
    wait_for(lambda: _succeeded(home) >= 6, timeout=DEADLINE, what="six ticks to run")
    for node in nodes:
        assert node.stop() == 0

    runs = [run for run in all_runs(home) if run.trigger.value == "schedule"]
    ticks = Counter(datetime.fromisoformat(run.context["tick"]) for run in runs)
    assert set(ticks.values()) == {1}, ticks
    first, last = min(ticks), max(ticks)
    assert sorted(ticks) == [first + timedelta(seconds=n) for n in range(int((last - first).total_seconds()) + 1)]
    assert {run.status for run in runs} <= {RunStatus.SUCCEEDED, RunStatus.QUEUED}


def _succeeded(home: Home) -> int:
    return sum(run.status is RunStatus.SUCCEEDED for run in all_runs(home))

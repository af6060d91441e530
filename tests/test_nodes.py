"""Nodes: registration, heartbeat, state and runs in hand, on both stores; `nodes --json` and `--role` for real."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime, timedelta

import pytest

from daemon.domain import NewRun, Origin, RunStatus
from daemon.nodes import NodeState, node_json, node_state
from daemon.roles import Role
from daemon.store import RunStore, make_engine
from daemon.store.migrate import upgrade
from daemon.store.nodes import FORGET_AFTER, NodeStore
from tests.support import INVOICE, LETTER, wait_for
from tests.test_crash import DEADLINE, FAST, Daemon, all_runs, fast_home, finished

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def stores(store_url):
    engine = make_engine(store_url)
    upgrade(engine)
    clock = Clock()
    yield NodeStore(engine, clock=clock), RunStore(engine, clock=clock), clock
    engine.dispose()


def register(nodes: NodeStore, node_id: str, role: Role = Role.ALL) -> None:
    nodes.register(node_id, host="box", pid=42, role=role, version="0.1.0")


def test_register_beat_stop_and_runs_in_hand(stores):
    nodes, runs, clock = stores
    register(nodes, "box-42-aaaaaa")
    register(nodes, "box-43-bbbbbb", Role.WORKER)
    for _ in range(3):
        runs.enqueue(NewRun("w", Origin.MANUAL))
    runs.claim("box-43-bbbbbb", 30)
    runs.claim("box-43-bbbbbb", 30)
    done = runs.claim("box-42-aaaaaa", 30)
    runs.finish(done.id, "box-42-aaaaaa", RunStatus.SUCCEEDED)
    clock.now += timedelta(seconds=5)
    assert nodes.beat("box-43-bbbbbb")
    assert not nodes.beat("nobody")
    listed = {node.id: node for node in nodes.all_nodes()}
    worker, other = listed["box-43-bbbbbb"], listed["box-42-aaaaaa"]
    assert (worker.role, worker.runs_in_hand, worker.heartbeat_at, worker.started_at) == (Role.WORKER, 2, clock.now, T0)
    assert (other.runs_in_hand, other.heartbeat_at, other.stopped_at) == (0, T0, None)
    nodes.stopped("box-42-aaaaaa")
    assert not nodes.beat("box-42-aaaaaa")  # a stopped node stays stopped
    assert {node.id: node.stopped_at for node in nodes.all_nodes()}["box-42-aaaaaa"] == clock.now


def test_state_up_gone_stopped(stores):
    nodes, _, _ = stores
    register(nodes, "a")
    register(nodes, "b")
    nodes.stopped("b")
    a, b = sorted(nodes.all_nodes(), key=lambda node: node.id)
    assert node_state(a, T0 + timedelta(seconds=30), lease_seconds=30) is NodeState.UP
    assert node_state(a, T0 + timedelta(seconds=31), lease_seconds=30) is NodeState.GONE
    assert node_state(b, T0 + timedelta(days=2), lease_seconds=30) is NodeState.STOPPED
    shown = node_json(a, NodeState.GONE)
    assert shown == {
        "id": "a", "host": "box", "pid": 42, "role": "all", "version": "0.1.0", "state": "gone",
        "started": T0.isoformat(), "last_heartbeat": T0.isoformat(), "stopped": None, "runs_in_hand": 0,
    }  # fmt: skip


def test_nodes_long_gone_are_forgotten_at_the_next_start(stores):
    nodes, _, clock = stores
    register(nodes, "old-stopped")
    nodes.stopped("old-stopped")
    register(nodes, "old-gone")
    register(nodes, "running-long")
    clock.now += FORGET_AFTER + timedelta(seconds=1)
    nodes.beat("running-long")
    register(nodes, "new")
    assert sorted(node.id for node in nodes.all_nodes()) == ["new", "running-long"]


# -- real processes ---------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path, standin):
    home = fast_home(tmp_path, standin.url)
    home.extra_env.update(FAST)  # `nodes` judges "gone" by the lease its own settings name
    daemons: list[Daemon] = []
    home.daemon = lambda **env: daemons.append(Daemon(home, **env)) or daemons[-1]  # type: ignore[attr-defined]
    yield home
    for daemon in daemons:
        daemon.kill()


def nodes_json(home) -> list[dict]:
    return json.loads(home.cli("nodes", "--json", check=True).stdout)


def test_nodes_shows_a_live_node_with_its_runs_then_gone_after_a_kill_then_stopped(home, standin):
    standin.config.latency = 3.0
    home.drop("invoice.txt", INVOICE)
    first = home.daemon().start()
    wait_for(lambda: standin.calls_in_flight >= 1, timeout=DEADLINE, what="a model call in flight")
    (node,) = nodes_json(home)
    assert (node["pid"], node["role"], node["state"], node["runs_in_hand"]) == (first.proc.pid, "all", "up", 1)
    assert node["id"] in first.log and "role all" in first.log
    first.send(signal.SIGKILL)
    first.wait()
    wait_for(lambda: nodes_json(home)[0]["state"] == "gone", timeout=DEADLINE, what="the dead node to show gone")
    standin.config.latency = 0.0

    second = home.daemon().start()  # the dead node's run comes back by lease expiry
    wait_for(lambda: finished(home, 1), timeout=DEADLINE, what="the run to finish")
    assert second.stop() == 0
    shown = {n["pid"]: n for n in nodes_json(home)}
    assert shown[first.proc.pid]["state"] == "gone" and shown[first.proc.pid]["runs_in_hand"] == 0
    assert shown[second.proc.pid]["state"] == "stopped"
    table = home.cli("nodes", check=True).stdout
    assert "gone" in table and "stopped" in table


def test_a_worker_node_watches_nothing_and_an_intake_node_runs_nothing(home, pg_url):
    # Roles split the work between machines on one PostgreSQL database, whose NOTIFY wakes the worker.
    home.extra_env["GRISTMILL_DATABASE_URL"] = pg_url
    home.drop("invoice.txt", INVOICE)
    worker = home.daemon().start("--role", "worker")
    wait_for(lambda: "gristmill ready" in worker.log, timeout=DEADLINE, what="the worker to be ready")
    assert "role worker" in worker.log and all_runs(home) == []
    intake = home.daemon().start("--role", "intake")
    wait_for(lambda: finished(home, 1), timeout=DEADLINE, what="the worker to run what intake queued")
    assert worker.stop() == 0
    home.drop("letter.txt", LETTER)
    wait_for(lambda: len(all_runs(home)) == 2, timeout=DEADLINE, what="intake to queue the letter")
    assert {run.status for run in all_runs(home)} == {RunStatus.SUCCEEDED, RunStatus.QUEUED}
    assert intake.stop() == 0
    assert "role intake" in intake.log
    roles = sorted(node["role"] for node in nodes_json(home))
    assert roles == ["intake", "worker"]

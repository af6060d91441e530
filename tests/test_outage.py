"""Model server outages with a real daemon: wait with backoff, no busy loop, one line down, one back."""

from __future__ import annotations

import os
import signal

import pytest

from daemon.domain import RunStatus
from daemon.standin import StandinServer
from tests.support import INVOICE, LETTER, RECEIPT, wait_for
from tests.test_crash import DEADLINE, Daemon, all_runs, fast_home, finished


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.fixture
def server():
    server = StandinServer().start()
    yield server
    server.stop()


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc to read CPU time")
def test_a_stopped_model_server_keeps_runs_queued_then_they_all_succeed(tmp_path, server):
    home = fast_home(tmp_path, server.url)
    daemon = Daemon(home).start()
    try:
        wait_for(lambda: "gristmill ready" in daemon.log, timeout=DEADLINE, what="the daemon to be ready")
        home.drop("first.txt", LETTER + "\nThe first letter.\n")  # the server was up, then goes
        wait_for(lambda: finished(home, 1), timeout=DEADLINE, what="the first run")
        server.stop()
        for name, text in {"invoice.txt": INVOICE, "letter.txt": LETTER, "receipt.md": RECEIPT}.items():
            home.drop(name, text)
        wait_for(lambda: "unavailable" in daemon.log, timeout=DEADLINE, what="the outage to be noticed")
        cpu_before = _cpu_seconds(daemon.proc.pid)
        # Several backoff rounds (GRISTMILL_BACKOFF_MAX_SECONDS=2) while the server stays away.
        wait_for(lambda: len(all_runs(home)) == 4 and _waited(home), timeout=DEADLINE, what="runs waiting")
        outage_cpu = _cpu_seconds(daemon.proc.pid) - cpu_before
        assert {r.status for r in all_runs(home) if "first" not in r.input_path} == {RunStatus.QUEUED}

        again = StandinServer(port=server.port).start()
        try:
            wait_for(lambda: finished(home, 4), timeout=DEADLINE, what="every run after the outage")
        finally:
            again.stop()
        daemon.send(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        daemon.kill()

    runs = all_runs(home)
    assert {r.status for r in runs} == {RunStatus.SUCCEEDED}
    assert [r.attempts for r in runs] == [1, 1, 1, 1]  # the outage used up no attempt
    lines = daemon.log.splitlines()
    assert len([line for line in lines if "unavailable" in line]) == 1, daemon.log
    assert len([line for line in lines if "model server is back" in line]) == 1, daemon.log
    assert outage_cpu < 1.5, f"the daemon used {outage_cpu:.2f}s of CPU while waiting: a busy loop"


def _waited(home) -> bool:
    """Some run was already put back for a later try at least three times (three backoff rounds)."""
    store_runs = all_runs(home)
    return any((r.error or "").startswith("the model server") for r in store_runs) and _rounds(home) >= 3


def _rounds(home) -> int:
    from tests.test_crash import read_store

    store = read_store(home)
    try:
        return sum(len([c for c in store.calls(r.id) if c.error]) for r in store.history(limit=100))
    finally:
        store._engine.dispose()

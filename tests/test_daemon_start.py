"""A daemon's first moments and a busy database, with real processes: a database another process is
still creating, SIGTERM while the command is loading, files that arrive while the database is locked,
and leases renewed while runs finish."""

from __future__ import annotations

import os
import signal
import sqlite3
import textwrap

import pytest

from daemon.domain import RunStatus
from tests.support import INVOICE, LETTER, wait_for
from tests.test_crash import (
    DEADLINE,
    all_runs,
    finished,
    home,  # noqa: F401  (the fixture: a fast home whose daemons are killed after)
)

# Sends this very process a SIGTERM when it first imports the module named in GRISTMILL_TEST_SIGTERM_AT:
# a stop signal that arrives while `gristmill run` is still loading, at a chosen moment.
SIGTERM_ON_IMPORT = textwrap.dedent("""\
    import os, signal, sys

    class _SigtermOnImport:
        def find_spec(self, name, path=None, target=None):
            if name == os.environ.get("GRISTMILL_TEST_SIGTERM_AT"):
                sys.meta_path.remove(self)
                os.kill(os.getpid(), signal.SIGTERM)
            return None

    sys.meta_path.insert(0, _SigtermOnImport())
""")


def test_a_daemon_waits_for_a_database_another_process_is_still_creating(home):
    home.data.mkdir(mode=0o700)
    database = home.data / "gristmill.db"
    database.touch(mode=0o600)
    # Another process midway through creating the database: a new file, still in rollback mode, its
    # write lock held. SQLite answers a second opener "locked" at once, whatever its busy timeout.
    creator = sqlite3.connect(database, isolation_level=None, timeout=0)
    creator.execute("BEGIN IMMEDIATE")
    daemon = home.daemon().start()
    try:
        wait_for(
            lambda: daemon.proc.poll() is not None or "another process is setting up the database" in daemon.log,
            timeout=DEADLINE,
            what="the daemon to wait for the database (or to give up)",
        )
        assert daemon.proc.poll() is None, daemon.log
    finally:
        creator.execute("COMMIT")
        creator.close()
    wait_for(lambda: "gristmill ready" in daemon.log, timeout=DEADLINE, what="the daemon to start")
    home.drop("invoice.txt", INVOICE)
    wait_for(lambda: finished(home, 1), timeout=DEADLINE, what="the file's run")
    assert daemon.stop() == 0, daemon.log
    assert "locked" not in daemon.log


def test_a_fresh_data_folder_is_created_with_the_database_already_in_wal_mode(home):
    home.cli("db", "upgrade", check=True)
    database = home.data / "gristmill.db"
    with open(database, "rb") as header:
        assert header.read(20)[18:20] == b"\x02\x02"  # the WAL file format, before anyone else opened it
    assert database.stat().st_mode & 0o777 == 0o600
    assert not [p.name for p in home.data.iterdir() if p.name.startswith(".gristmill.db.new")]


@pytest.mark.parametrize("module", ["daemon.cli", "daemon.settings", "daemon.app"])
def test_sigterm_while_run_is_still_loading_stops_cleanly_with_exit_0(home, tmp_path, module):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SIGTERM_ON_IMPORT)
    path = os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p)
    home.drop("invoice.txt", INVOICE)

    daemon = home.daemon(PYTHONPATH=path, GRISTMILL_TEST_SIGTERM_AT=module).start()

    assert daemon.wait() == 0, daemon.log
    assert daemon.log.splitlines()[-1].endswith("stopped")
    assert RunStatus.RUNNING not in {r.status for r in all_runs(home)}


def test_other_commands_still_stop_at_once_on_sigterm(home, tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SIGTERM_ON_IMPORT)
    home.extra_env.update(
        PYTHONPATH=os.pathsep.join(p for p in (str(hook), os.environ.get("PYTHONPATH", "")) if p),
        GRISTMILL_TEST_SIGTERM_AT="daemon.cli",
    )

    assert home.cli("workflows").returncode == -signal.SIGTERM


def test_files_that_arrive_while_the_database_is_locked_are_queued_soon_after(home):
    # A one-second wait for the lock; the rescan (300 s) is far beyond the test's deadline.
    daemon = home.daemon(
        GRISTMILL_DATABASE_TIMEOUT="1", GRISTMILL_LEASE_SECONDS="30", GRISTMILL_HEARTBEAT_SECONDS="10"
    ).start()
    wait_for(lambda: "gristmill ready" in daemon.log, timeout=DEADLINE, what="the daemon to start")
    holder = sqlite3.connect(home.data / "gristmill.db", isolation_level=None, timeout=10)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock, say a long `gristmill prune`
    try:
        home.drop("invoice.txt", INVOICE)
        wait_for(lambda: "stayed locked" in daemon.log, timeout=DEADLINE, what="the file's intake to fail")
    finally:
        holder.execute("COMMIT")
        holder.close()

    wait_for(lambda: finished(home, 1), timeout=DEADLINE, what="the file to be queued and run")
    (run,) = all_runs(home)
    assert run.status is RunStatus.SUCCEEDED, run
    assert daemon.log.count("the run database failed: the database stayed locked") == 1, daemon.log  # said once,
    assert "the run database works again" in daemon.log  # and once when it is over
    assert daemon.stop() == 0, daemon.log


def test_runs_that_succeed_while_their_lease_is_renewed_never_log_a_lost_lease(home):
    # The heartbeat renews every 5 ms, so renewals keep meeting runs that are just being finished.
    daemon = home.daemon(GRISTMILL_HEARTBEAT_SECONDS="0.005", GRISTMILL_CONCURRENCY="4").start()
    names = [f"note-{n:03d}.txt" for n in range(60)]
    for n, name in enumerate(names):
        home.drop(name, (INVOICE if n % 2 else LETTER) + f"\n{n}\n")

    wait_for(lambda: finished(home, len(names)), timeout=DEADLINE * 2, what="every run to finish")
    assert daemon.stop() == 0, daemon.log

    assert {r.status for r in all_runs(home)} == {RunStatus.SUCCEEDED}
    assert "lost its lease" not in daemon.log

"""Faults that must not fail innocent runs, with real daemons on a small tmpfs the test mounts.

A full destination is an outage of that folder; a full, read-only, deleted or corrupt database is
an outage of the store or, when it cannot come back, one sentence and a stop. RELIABILITY.md 15, 22, 23.
"""

from __future__ import annotations

import subprocess

import pytest

from daemon.domain import RunStatus
from tests.support import INVOICE, LETTER, wait_for
from tests.test_crash import DEADLINE, Daemon, all_runs, assert_one_outcome_each, fast_home, finished
from tests.tmpfs import tmpfs

MiB = 1 << 20


@pytest.fixture
def home(tmp_path, standin):
    home = fast_home(tmp_path, standin.url)
    daemons: list[Daemon] = []
    home.daemon = lambda **env: daemons.append(Daemon(home, **env)) or daemons[-1]  # type: ignore[attr-defined]
    yield home
    for daemon in daemons:
        daemon.kill()


def _ready(daemon: Daemon) -> None:
    wait_for(lambda: "gristmill ready" in daemon.log or daemon.proc.poll() is not None, timeout=DEADLINE,
             what="the daemon to be ready")  # fmt: skip
    assert daemon.proc.poll() is None, daemon.log


def _waiting_on(home, folder) -> list:
    return [r for r in all_runs(home) if r.status is RunStatus.QUEUED and r.error and str(folder) in r.error]


def _one_sentence(result: subprocess.CompletedProcess) -> str:
    """The command failed with exactly one line on stderr, no traceback; that line."""
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    (line,) = result.stderr.strip().splitlines()
    return line


def test_a_full_destination_waits_as_an_outage_of_that_folder_and_resumes(home):
    with tmpfs(home.docs, MiB) as docs:
        docs.fill()
        home.drop("invoice.txt", INVOICE)
        daemon = home.daemon().start()
        folder = home.docs / "Invoices"

        waiting = wait_for(lambda: _waiting_on(home, folder), timeout=DEADLINE, what="the run to wait")
        assert waiting[0].attempts == 0  # an outage uses up no attempt
        assert waiting[0].error == f"the folder {folder} cannot take files: its disk is full; free some space"
        docs.free()
        wait_for(lambda: finished(home, 1), timeout=DEADLINE, what="the run to resume by itself")

        assert (folder / "invoice.txt").read_text() == INVOICE
        assert daemon.stop() == 0
    (run,) = all_runs(home)
    assert run.status is RunStatus.SUCCEEDED and run.attempts == 1
    log = daemon.log
    assert log.count("cannot take files") == 1 and log.count("takes files again") == 1, log
    assert "Traceback" not in log and "internal error" not in log


def test_a_full_database_disk_is_an_outage_no_worker_dies_and_it_resumes(home, standin):
    with tmpfs(home.data, 8 * MiB) as data:
        standin.config.latency = 3.0
        home.drop("invoice.txt", INVOICE)
        daemon = home.daemon(GRISTMILL_RESCAN_SECONDS="1").start()
        wait_for(lambda: standin.calls_in_flight >= 1, timeout=DEADLINE, what="a model call in flight")
        data.fill()  # the call's answer cannot be recorded
        home.drop("letter.txt", LETTER)  # and a file arrives while the database is full
        wait_for(lambda: "the run database failed" in daemon.log, timeout=DEADLINE, what="the outage to be said")
        standin.config.latency = 0.0
        data.free()

        wait_for(lambda: finished(home, 2), timeout=DEADLINE, what="both runs to finish by themselves")
        assert daemon.proc.poll() is None
        assert_one_outcome_each(home, {"invoice.txt": INVOICE, "letter.txt": LETTER})
        assert daemon.stop() == 0
    log = daemon.log
    assert log.count("the run database failed") == 1 and log.count("the run database works again") == 1, log
    assert "Traceback" not in log


def test_a_deleted_database_stops_the_daemon_with_one_sentence(home):
    with tmpfs(home.data, 8 * MiB):
        daemon = home.daemon().start()
        _ready(daemon)
        (home.data / "gristmill.db").unlink()
        home.drop("letter.txt", LETTER)

        assert daemon.wait() == 1  # within a heartbeat, not at the next restart
        last = daemon.log.strip().splitlines()[-1]
        assert last.startswith(f"gristmill: the database {home.data / 'gristmill.db'} was deleted while gristmill")
        assert "Traceback" not in daemon.log
        assert "succeeded" not in daemon.log  # nothing was recorded into the unlinked file
        assert (home.inbox / "letter.txt").exists()


def test_a_database_made_read_only_while_running_is_an_outage_and_check_fails(home):
    # chattr +i stops writes through files already open (ext4 does, tmpfs does not): the daemon's own
    # handles then fail as a read-only database does. A tmpfs remount cannot: open files keep it busy.
    _require_immutable_files(home.root)
    daemon = home.daemon(GRISTMILL_RESCAN_SECONDS="1").start()
    _ready(daemon)
    home.drop("invoice.txt", INVOICE)
    wait_for(lambda: finished(home, 1), timeout=DEADLINE, what="the first run")
    files = [home.data / name for name in ("gristmill.db", "gristmill.db-wal")]
    _immutable(files, True)
    try:
        home.drop("letter.txt", LETTER)
        wait_for(lambda: "the run database failed" in daemon.log, timeout=DEADLINE, what="the outage to be said")
        check = home.cli("check")
        assert check.returncode == 1 and "Traceback" not in check.stdout + check.stderr
        db = home.data / "gristmill.db"
        assert f"error: the database {db} is read-only; check its owner, permissions and file system" in check.stdout
        for command in (["runs"], ["retry", "--failed"], ["prune"], ["db", "upgrade"]):
            result = home.cli(*command)  # reading may still work; what fails says so in one sentence
            assert result.returncode == 0 or _one_sentence(result), command
    finally:
        _immutable(files, False)
    wait_for(lambda: finished(home, 2), timeout=DEADLINE, what="the run that waited")
    assert daemon.stop() == 0
    log = daemon.log
    assert log.count("the run database failed") == 1 and log.count("works again") == 1, log
    assert "Traceback" not in log


def test_a_corrupt_or_read_only_database_is_one_sentence_from_every_command_and_check_fails(home):
    with tmpfs(home.data, 8 * MiB) as data:
        (home.data / "gristmill.db").write_bytes(b"this is not a database " * 200)
        commands = [["runs"], ["show", "1"], ["retry", "1"], ["prune"], ["db", "upgrade"], ["run", "--once"],
                    ["trigger", "sort-inbox", str(home.drop("letter.txt", LETTER))]]  # fmt: skip
        for command in commands:
            assert "is corrupt or not a SQLite database" in _one_sentence(home.cli(*command)), command
        check = home.cli("check")
        assert check.returncode == 1 and "Traceback" not in check.stderr
        assert "is corrupt or not a SQLite database" in check.stdout

        (home.data / "gristmill.db").unlink()
        home.cli("db", "upgrade", check=True)
        data.read_only(True)
        for command in commands:
            assert "cannot be opened" in _one_sentence(home.cli(*command)), command
        assert home.cli("check").returncode == 1
        data.read_only(False)


def _immutable(paths, on: bool) -> None:
    for path in paths:
        done = subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot make {path} read-only here: {done.stderr.strip()}")


def _require_immutable_files(folder) -> None:
    probe = folder / ".immutable-probe"
    with open(probe, "wb") as held:
        _immutable([probe], True)
        try:
            held.write(b"x")
            held.flush()
            stops_writes = False
        except OSError:
            stops_writes = True
        finally:
            _immutable([probe], False)
    probe.unlink()
    if not stops_writes:
        pytest.skip(f"the file system of {folder} lets open files be written after chattr +i")

"""Life cycle with a real daemon process: SIGTERM, a second signal, systemd notify, reloads."""

from __future__ import annotations

import signal
import socket
import threading
import time

from daemon.domain import RunStatus
from tests.support import INVOICE, LETTER, RECEIPT, wait_for
from tests.test_crash import (
    DEADLINE,
    all_runs,
    finished,
    home,  # noqa: F401  (the fixture: a fast home whose daemons are killed after)
)


def _drop_three(home) -> None:
    home.drop("invoice.txt", INVOICE)
    home.drop("letter.txt", LETTER)
    home.drop("receipt.md", RECEIPT)


def _statuses(home) -> set[RunStatus]:
    return {r.status for r in all_runs(home)}


def test_sigterm_lets_running_runs_finish_then_exits_0(home, standin):
    standin.config.latency = 1.0
    _drop_three(home)
    daemon = home.daemon().start()
    wait_for(lambda: standin.calls_in_flight >= 1, timeout=DEADLINE, what="a model call in flight")

    started = time.monotonic()
    daemon.send(signal.SIGTERM)
    assert daemon.wait(timeout=DEADLINE) == 0, daemon.log
    assert time.monotonic() - started < 20 + 5  # GRISTMILL_STOP_TIMEOUT=20 and a margin for exit

    runs = all_runs(home)
    assert RunStatus.RUNNING not in {r.status for r in runs}
    assert any(r.status is RunStatus.SUCCEEDED for r in runs)  # the running one finished
    assert "stopped" in daemon.log.splitlines()[-1]


def test_sigterm_past_the_stop_timeout_requeues_the_run_with_its_attempt_refunded(home, standin):
    standin.config.latency = 30.0
    home.drop("invoice.txt", INVOICE)
    daemon = home.daemon(GRISTMILL_STOP_TIMEOUT="1").start()
    wait_for(lambda: standin.calls_in_flight >= 1, timeout=DEADLINE, what="a model call in flight")

    started = time.monotonic()
    daemon.send(signal.SIGTERM)
    assert daemon.wait(timeout=DEADLINE) == 0, daemon.log
    assert time.monotonic() - started < 10

    (run,) = all_runs(home)
    assert run.status is RunStatus.QUEUED and run.attempts == 0
    assert run.error == "the daemon stopped before this run finished; queued again"
    assert (home.inbox / "invoice.txt").exists()


def test_sigterm_five_times_stops_at_once_and_leaves_nothing_running(home, standin):
    standin.config.latency = 30.0
    _drop_three(home)
    daemon = home.daemon(GRISTMILL_STOP_TIMEOUT="60").start()
    # GRISTMILL_CONCURRENCY=2 model slots and one more worker: all three runs are taken.
    wait_for(
        lambda: [r.status for r in all_runs(home)].count(RunStatus.RUNNING) == 3,
        timeout=DEADLINE,
        what="all three runs running",
    )

    started = time.monotonic()
    daemon.send(signal.SIGTERM)
    # Signals sent before the first is handled merge into one (POSIX); send the rest once it was.
    wait_for(lambda: "stopping: no new runs" in daemon.log, timeout=DEADLINE, what="the first SIGTERM")
    for _ in range(4):
        daemon.send(signal.SIGTERM)
    assert daemon.wait(timeout=DEADLINE) == 0, daemon.log
    assert time.monotonic() - started < 10  # far less than the 60 s stop timeout

    assert _statuses(home) == {RunStatus.QUEUED}
    assert all(r.attempts == 0 for r in all_runs(home))
    interrupted = [r for r in all_runs(home) if r.error]
    assert len(interrupted) == 3
    assert {r.error for r in interrupted} == {"the daemon stopped at once (a second signal); queued again"}

    standin.config.latency = 0.0
    again = home.daemon().start()
    wait_for(lambda: finished(home, 3), timeout=DEADLINE, what="the requeued runs to finish")
    assert again.stop() == 0
    assert _statuses(home) == {RunStatus.SUCCEEDED}


def _listen(path) -> tuple[socket.socket, list[str], threading.Event]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    received: list[str] = []
    done = threading.Event()

    def loop() -> None:
        while not done.is_set():
            try:
                received.append(sock.recv(4096).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    threading.Thread(target=loop, daemon=True).start()
    return sock, received, done


def test_systemd_hears_ready_then_watchdog_pings_then_stopping(home, tmp_path):
    path = tmp_path / "notify.sock"
    sock, received, done = _listen(path)
    try:
        daemon = home.daemon(NOTIFY_SOCKET=str(path), WATCHDOG_USEC="1000000").start()
        wait_for(lambda: sum("WATCHDOG=1" in m for m in received) >= 3, timeout=DEADLINE, what="three watchdog pings")
        assert daemon.stop() == 0, daemon.log
        wait_for(lambda: any("STOPPING=1" in m for m in received), timeout=DEADLINE, what="STOPPING=1")
    finally:
        done.set()
        sock.close()

    messages = list(received)
    assert messages[0].splitlines()[0] == "READY=1"
    assert "STATUS=scanning the watched folders" in messages[0]
    kinds = [m.splitlines()[0].split("=")[0] for m in messages]
    first_stop = kinds.index("STOPPING")
    assert set(kinds[1:first_stop]) == {"WATCHDOG", "STATUS"}
    assert kinds[first_stop:] == ["STOPPING"]
    assert kinds.count("READY") == 1
    statuses = [m for m in messages if m.startswith("STATUS=")]
    assert any("running" in s and "queued" in s and "model server up" in s for s in statuses), statuses
    assert "STATUS=stopping: waiting up to 20s for running runs" in messages[-1]


def test_a_broken_edit_keeps_the_last_good_version_and_a_fix_is_picked_up(home):
    daemon = home.daemon().start()
    wait_for(lambda: "gristmill ready" in daemon.log, timeout=DEADLINE, what="the daemon to be ready")
    workflow = home.workflows / "sort-inbox.yaml"
    good = workflow.read_text()

    workflow.write_text(good.replace("  - id: summary\n", "  - id: summary\n    colour: blue\n"))
    wait_for(lambda: "keeps running as last loaded" in daemon.log, timeout=DEADLINE, what="the broken edit")
    error = next(line for line in daemon.log.splitlines() if "colour" in line)
    assert f"{workflow}, line " in error

    home.drop("invoice.txt", INVOICE)  # the last good version still files it
    wait_for(lambda: finished(home, 1), timeout=DEADLINE, what="the run of the last good version")
    assert (home.docs / "Invoices" / "invoice.txt").exists()

    workflow.write_text(good.replace("~/Documents/Letters", "~/Documents/Post"))
    wait_for(lambda: daemon.log.count("workflows reloaded") >= 2, timeout=DEADLINE, what="the fixed file")
    home.drop("letter.txt", LETTER)
    wait_for(lambda: finished(home, 2), timeout=DEADLINE, what="the letter's run")
    assert (home.docs / "Post" / "letter.txt").exists()

    reloads = daemon.log.count("workflows reloaded")
    daemon.send(signal.SIGHUP)
    wait_for(lambda: daemon.log.count("workflows reloaded") > reloads, timeout=DEADLINE, what="SIGHUP reload")
    assert daemon.stop() == 0

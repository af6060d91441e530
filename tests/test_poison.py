"""Crashes from outside fail no innocent run; a document that kills gristmill itself is failed as a poison.

Real daemons, real SIGKILLs (RELIABILITY.md 4 and 24). The leases here are five minutes long: every
restart must take back its dead predecessor's runs at once, or these tests run out of time.
"""

from __future__ import annotations

import signal

import pytest

from daemon.domain import RunStatus
from daemon.engine.journal import Phase, read_journal
from daemon.engine.takeover import POISON
from tests.support import INVOICE, LETTER, wait_for
from tests.test_crash import DEADLINE, Daemon, all_runs, fast_home, finished

LONG_LEASE = {"GRISTMILL_LEASE_SECONDS": "300", "GRISTMILL_HEARTBEAT_SECONDS": "1"}

PARSED = """name: parsed
trigger:
  watch: {path: ~/Inbox, settle_seconds: 0.2}
steps:
  - id: summary
    summarise: {max_words: 20}
  - route: {default: {move_to: ~/Done}}
"""


@pytest.fixture
def home(tmp_path, standin):
    home = fast_home(tmp_path, standin.url)
    daemons: list[Daemon] = []
    home.daemon = lambda **env: daemons.append(Daemon(home, **{**LONG_LEASE, **env})) or daemons[-1]  # type: ignore[attr-defined]
    yield home
    for daemon in daemons:
        daemon.kill()


def _kill(daemon: Daemon) -> None:
    daemon.send(signal.SIGKILL)
    assert daemon.wait() == -signal.SIGKILL


def _phases(home) -> dict[int, Phase]:
    found: dict[int, Phase] = {}
    for path in (home.data / "journal").glob("*.journal"):
        found |= read_journal(path) or {}
    return found


def test_three_sigkills_while_the_run_waits_on_the_model_server_do_not_fail_it(home, standin):
    standin.config.latency = 30.0  # every call outlives its daemon
    home.drop("invoice.txt", INVOICE)
    for kill in range(3):
        daemon = home.daemon().start()
        wait_for(lambda n=kill: len(standin.recorded()) > n, timeout=DEADLINE, what=f"model call {kill + 1}")
        _kill(daemon)
    standin.config.latency = 0.0

    survivor = home.daemon().start()
    wait_for(lambda: finished(home, 1), timeout=DEADLINE, what="the run, taken back at once")
    assert survivor.stop() == 0

    (run,) = all_runs(home)
    assert run.status is RunStatus.SUCCEEDED and run.attempts == 1, run.error
    assert (home.docs / "Invoices" / "invoice.txt").read_text() == INVOICE


def test_three_sigkills_while_the_extraction_child_parses_do_not_fail_it(home, standin):
    home.workflows.joinpath("sort-inbox.yaml").unlink()
    home.write_workflow("parsed.yaml", PARSED)
    page = "<html><body>" + "".join(f"<p>Line {i} of a <b>long</b> page</p>" for i in range(150_000)) + "</body></html>"
    home.drop("page.html", page)
    for kill in range(3):
        daemon = home.daemon().start()
        wait_for(lambda: Phase.WAITING in _phases(home).values() and not standin.recorded(), timeout=DEADLINE,
                 what=f"parse {kill + 1} in the extraction child")  # fmt: skip
        _kill(daemon)

    survivor = home.daemon().start()
    wait_for(lambda: finished(home, 1), timeout=DEADLINE, what="the run, taken back at once")
    assert survivor.stop() == 0

    (run,) = all_runs(home)
    assert run.status is RunStatus.SUCCEEDED and run.attempts == 1, run.error
    assert (home.root / "Done" / "page.html").exists()


def test_a_document_that_kills_gristmill_in_its_own_work_fails_as_a_poison(home, standin):
    home.drop("poison.txt", f"{LETTER}\nPOISON-PILL\n")
    crashing = {"GRISTMILL_FAILPOINT": "document_read:POISON-PILL"}  # dies in-process, on this document only
    for _ in range(3):
        daemon = home.daemon(**crashing).start()
        assert daemon.wait() == -signal.SIGKILL, daemon.log

    survivor = home.daemon(**crashing).start()
    home.drop("invoice.txt", INVOICE)
    wait_for(lambda: finished(home, 2), timeout=DEADLINE, what="the poison given up, the other run done")
    assert survivor.proc.poll() is None  # no restart loop
    assert survivor.stop() == 0

    poison, innocent = sorted(all_runs(home), key=lambda r: r.id)
    assert poison.status is RunStatus.FAILED and poison.attempts == 3
    assert poison.error == POISON.format(max=3)
    assert (home.inbox / "poison.txt").exists()
    assert innocent.status is RunStatus.SUCCEEDED and innocent.attempts == 1


def test_retry_wakes_a_running_daemon(home, standin):
    standin.config.update({"fail_next": 1, "fail_status": 400})
    home.drop("invoice.txt", INVOICE)
    daemon = home.daemon(GRISTMILL_MAX_ATTEMPTS="1").start()
    wait_for(lambda: finished(home, 1), timeout=DEADLINE, what="the run to fail")
    assert all_runs(home)[0].status is RunStatus.FAILED

    home.cli("retry", "--failed", check=True)

    # Idle workers look again only every 30 s on their own: well within that, the bell was heard.
    wait_for(lambda: all_runs(home)[0].status is RunStatus.SUCCEEDED, timeout=20, what="the retried run")
    assert daemon.stop() == 0

"""Crash safety with real processes: SIGKILL mid-call and at each failpoint, then restart.

Every file must end with exactly one outcome and exactly one destination file, nothing lost.
Each test runs on SQLite and on PostgreSQL. The helpers here (`Daemon`, `fast_home`, `read_store`,
the `home` fixture) are shared by the other life-cycle tests, which stay on SQLite.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from daemon.domain import Run, RunStatus
from daemon.engine.takeover import POISON
from daemon.failpoints import POINTS
from daemon.store import RunStore
from daemon.store.db import make_engine
from daemon.store.migrate import upgrade
from tests.support import INVOICE, LETTER, Home, make_home, wait_for

# Short leases so a crashed process's runs come back within seconds, not half a minute.
FAST = {
    "GRISTMILL_LEASE_SECONDS": "2", "GRISTMILL_HEARTBEAT_SECONDS": "0.5",
    "GRISTMILL_BACKOFF_MAX_SECONDS": "2", "GRISTMILL_STOP_TIMEOUT": "20",
}  # fmt: skip
DEADLINE = 60.0


class Daemon:
    """`gristmill run` in a subprocess; its log (stderr) goes to a file in the home."""

    count = 0

    def __init__(self, home: Home, **env: str) -> None:
        Daemon.count += 1
        self.home, self.env = home, {**home.env, **FAST, **env}
        self.log_path = home.root / f"daemon-{Daemon.count}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, *args: str) -> Daemon:
        """`gristmill run ARGS`."""
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "daemon", "run", *args], env=self.env, cwd=self.home.root,
                stdout=subprocess.DEVNULL, stderr=log,
            )  # fmt: skip
        return self

    def send(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = DEADLINE) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def stop(self) -> int:
        """SIGTERM and the exit code."""
        self.send(signal.SIGTERM)
        return self.wait()

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def fast_home(tmp_path: Path, url: str) -> Home:
    """A home with the shipped sort-inbox workflow, settling in 0.2 s instead of 2 s."""
    home = make_home(tmp_path, url)
    path = home.use_example("sort-inbox.yaml")
    path.write_text(path.read_text().replace("settle_seconds: 2", "settle_seconds: 0.2"))
    return home


def read_store(home: Home) -> RunStore:
    # Migrating (a no-op at head, safe beside the daemon's own) means a query made before a
    # slow daemon created its tables waits for them instead of failing.
    engine = make_engine(home.db_url)
    upgrade(engine)
    return RunStore(engine)


def all_runs(home: Home) -> list[Run]:
    store = read_store(home)
    try:
        return store.history(limit=10_000)
    finally:
        store._engine.dispose()


def finished(home: Home, count: int) -> bool:
    runs = all_runs(home)
    return len(runs) >= count and all(r.status.finished for r in runs)


def assert_one_outcome_each(home: Home, files: dict[str, str]) -> None:
    """Each file: one succeeded run, one destination with its content, one summary; nothing else."""
    runs = all_runs(home)
    assert len(runs) == len(files), [(r.id, r.input_path, r.status) for r in runs]
    assert not any(home.inbox.iterdir()), list(home.inbox.iterdir())
    # A SIGKILL in the middle of writing may leave a hidden temporary file (never a partial file under
    # a final name); the resumed run sweeps it, so none may remain.
    everything = [p for p in home.docs.rglob("*") if p.is_file()]
    assert not [p for p in everything if p.name.startswith(".gristmill-tmp-")]
    for name, text in files.items():
        (run,) = [r for r in runs if Path(r.input_path or "").name == name]
        assert run.status is RunStatus.SUCCEEDED, (run.status, run.error)
        dest = Path(run.outputs["filed"]["destination"])
        assert dest.parent.parent == home.docs and dest.name == name
        assert [p for p in everything if p.read_text() == text] == [dest]
        summaries = [p for p in everything if p.parent.name == "Summaries" and p.stem.startswith(Path(name).stem)]
        assert [p.name for p in summaries] == [f"{Path(name).stem}.md"]
        assert f"Filed at {dest}." in summaries[0].read_text()


FILES = {"invoice.txt": INVOICE, "letter.txt": LETTER}


# Every test here runs against both stores; tests elsewhere that borrow `home` get SQLite.
pytestmark = pytest.mark.parametrize("home", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def home(request, tmp_path, standin):
    home = fast_home(tmp_path, standin.url)
    if getattr(request, "param", "sqlite") == "postgresql":
        home.extra_env["GRISTMILL_DATABASE_URL"] = request.getfixturevalue("pg_url")
    daemons: list[Daemon] = []
    home.daemon = lambda **env: daemons.append(Daemon(home, **env)) or daemons[-1]  # type: ignore[attr-defined]
    yield home
    for daemon in daemons:
        daemon.kill()


def _drop_all(home: Home) -> None:
    for name, text in FILES.items():
        home.drop(name, text)


def test_sigkill_during_a_slow_model_call_reruns_it_once(home, standin):
    standin.config.latency = 3.0  # the stand-in finishes the dead process's call before the next one
    _drop_all(home)
    first = home.daemon().start()
    wait_for(lambda: standin.calls_in_flight >= 1, timeout=DEADLINE, what="a model call in flight")
    first.send(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    assert any(r.status is RunStatus.RUNNING for r in all_runs(home))
    standin.config.latency = 0.0

    second = home.daemon().start()
    wait_for(lambda: finished(home, len(FILES)), timeout=DEADLINE, what="every run to finish")
    assert second.stop() == 0

    assert_one_outcome_each(home, FILES)
    # The process died while the run waited on the model server: not the document's doing, no attempt used.
    assert max(r.attempts for r in all_runs(home)) == 1
    assert re.search(r"returned \d+ (interrupted )?runs (whose worker stopped )?to the queue", second.log)


@pytest.mark.parametrize("point", sorted(POINTS))
def test_sigkill_at_each_failpoint_then_restart_finishes_from_disk(home, point):
    _drop_all(home)
    crashing = home.daemon(GRISTMILL_FAILPOINT=point).start()
    assert crashing.wait() == -signal.SIGKILL, crashing.log

    again = home.daemon().start()
    wait_for(lambda: finished(home, len(FILES)), timeout=DEADLINE, what="every run to finish")
    assert again.stop() == 0, again.log

    assert_one_outcome_each(home, FILES)


def test_a_run_that_keeps_crashing_the_daemon_fails_with_the_reason(home):
    home.drop("invoice.txt", INVOICE)
    env = {"GRISTMILL_FAILPOINT": "before_finish", "GRISTMILL_MAX_ATTEMPTS": "2"}
    for _ in range(2):
        crashing = home.daemon(**env).start()
        assert crashing.wait() == -signal.SIGKILL, crashing.log

    survivor = home.daemon(**env).start()
    wait_for(lambda: finished(home, 1), timeout=DEADLINE, what="the run to be given up")
    assert survivor.proc.poll() is None  # no restart loop: the daemon stays up
    assert survivor.stop() == 0

    (run,) = all_runs(home)
    assert run.status is RunStatus.FAILED and run.attempts == 2
    assert run.error == POISON.format(max=2)
    assert [p for p in home.docs.rglob("invoice.txt")] == [home.docs / "Invoices" / "invoice.txt"]

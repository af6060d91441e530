"""Progress: `run --once` shows a bar on a terminal and plain lines elsewhere, the daemon logs its way
through a backlog, a long run says which part it is at; counted nouns agree ("1 run", "1 file")."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys

from daemon.domain import NewRun, Origin, RunStatus
from daemon.engine.progress import Progress, ProgressMeter
from daemon.store import RunStore, make_engine
from daemon.store.migrate import upgrade
from tests.support import INVOICE, LETTER, make_home, wait_for
from tests.test_crash import DEADLINE, Daemon, finished
from tests.test_long_inputs import WORKFLOW as LONG_WORKFLOW
from tests.test_long_inputs import _long_document

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _home_with_backlog(tmp_path, standin, count: int):
    home = make_home(tmp_path, standin.url)
    home.use_example("sort-inbox.yaml")
    for n in range(count):
        home.drop(f"doc-{n:02d}.txt", (INVOICE if n % 2 else LETTER) + f"\n{n}\n")
    return home


def test_run_once_without_a_terminal_prints_plain_progress_lines(tmp_path, standin):
    standin.config.latency = 0.05
    home = _home_with_backlog(tmp_path, standin, 20)

    result = home.cli("run", "--once", check=True)

    lines = [line.split(" INFO ", 1)[1] for line in result.stderr.splitlines() if " INFO progress: " in line]
    assert lines[0].startswith("progress: 0 of 20 runs done (none yet); "), result.stderr
    assert lines[-1] == "progress: 20 of 20 runs done (20 succeeded); 0 queued, 0 running"
    assert 2 <= len(lines) <= 12  # a tenth at a time, never a line per poll
    assert "\x1b[" not in result.stderr  # no terminal codes in a pipe
    assert result.stdout.strip() == "processed: 20 succeeded"


def test_run_once_on_a_terminal_shows_a_progress_bar(tmp_path, standin):
    home = _home_with_backlog(tmp_path, standin, 12)
    controller, terminal = pty.openpty()
    env = {**home.env, "TERM": "xterm-256color", "COLUMNS": "120"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon", "run", "--once"],
        env=env, cwd=home.root, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal,
    )  # fmt: skip
    os.close(terminal)
    output = b""
    while True:
        ready, _, _ = select.select([controller], [], [], DEADLINE)
        if not ready:
            break
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed: the process is done with it
            break
        if not chunk:
            break
        output += chunk
    os.close(controller)
    assert proc.wait(DEADLINE) == 0
    text = ANSI.sub("", output.decode(errors="replace"))

    assert "runs" in text and "12/12" in text and "12 succeeded" in text
    assert "processed: 12 succeeded" in text
    assert "INFO progress: " not in text  # the bar, not the plain lines


def test_the_daemon_logs_its_progress_through_a_backlog(tmp_path, standin):
    standin.config.latency = 0.05
    home = _home_with_backlog(tmp_path, standin, 10)
    daemon = Daemon(home, GRISTMILL_PROGRESS_SECONDS="0.5").start()
    try:
        wait_for(lambda: finished(home, 10), timeout=DEADLINE, what="the backlog")
        wait_for(lambda: "0 queued, 0 running" in daemon.log, timeout=DEADLINE, what="a progress line at the end")
    finally:
        assert daemon.stop() == 0, daemon.log
    lines = [line for line in daemon.log.splitlines() if " progress: " in line]
    assert lines and all(re.search(r"progress: \d+ runs? ended in the last 0s", line) for line in lines), daemon.log
    assert re.search(r"gristmill ready as node \S+ \(role all\): 1 workflow, scanning the watched folders", daemon.log)
    assert "start-up scan done: 10 files found at start" in daemon.log, daemon.log


def test_a_long_run_logs_each_part_it_has_read(tmp_path, standin):
    home = make_home(tmp_path, standin.url)
    home.write_workflow("digest-long.yaml", LONG_WORKFLOW)
    document = home.drop("annual.txt", _long_document())

    result = home.cli("trigger", "digest-long", str(document), check=True)

    parts = re.findall(r"run (\d+) \(digest-long\) step summary: summarised part (\d+) of (\d+)", result.stderr)
    assert parts, result.stderr
    total = int(parts[0][2])
    assert total >= 5 and [int(p[1]) for p in parts[:total]] == list(range(1, total + 1))


def test_counted_nouns_agree():
    one = Progress({RunStatus.SUCCEEDED: 1}, queued=0, running=0)
    assert one.line() == "1 of 1 run done (1 succeeded); 0 queued, 0 running"


def test_the_meter_counts_the_runs_that_ended_since_it_was_made(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    upgrade(engine)
    store = RunStore(engine)
    for _ in range(4):
        store.enqueue(NewRun("w", Origin.MANUAL))
    store.finish(store.claim("a", 30).id, "a", RunStatus.SUCCEEDED)  # before the meter: not counted
    meter = ProgressMeter(store)
    store.finish(store.claim("a", 30).id, "a", RunStatus.FAILED)
    store.claim("a", 30)
    progress = meter.read(final=True)
    engine.dispose()
    assert progress == Progress({RunStatus.SUCCEEDED: 0, RunStatus.FAILED: 1, RunStatus.SKIPPED: 0}, 1, 1, True)
    assert progress.line() == "1 of 3 runs done (1 failed); 1 queued, 1 running"

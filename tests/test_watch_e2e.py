"""A real daemon (`gristmill run` in a subprocess) on a real watched folder: 1,000 files at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from tests.support import make_home, wait_for

COUNT = 1000

WORKFLOW = """name: burst
trigger:
  watch: {path: ~/Inbox, settle_seconds: 0.5}
steps:
  - id: summary
    summarise: {max_words: 10}
  - route: {default: {move_to: ~/Done}}
"""


@pytest.fixture
def daemon(tmp_path, standin):
    """Start `gristmill run` for a home; yields (home, stderr lines); SIGTERM at the end."""
    home = make_home(tmp_path, standin.url)
    home.write_workflow("burst.yaml", WORKFLOW)
    home.extra_env.update(GRISTMILL_CONCURRENCY="4", GRISTMILL_RESCAN_SECONDS="2")
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon", "run"], env=home.env, cwd=home.root,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("gristmill ready" in line for line in lines) or proc.poll() is not None,
                 timeout=60, what="the daemon to be ready")  # fmt: skip
        assert proc.poll() is None, "".join(lines)
        yield home, proc, lines
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_a_thousand_files_dropped_at_once_each_run_exactly_once(daemon):
    home, proc, lines = daemon
    staging = home.root / "staging"
    staging.mkdir()
    names = [f"doc-{n:04d}.txt" for n in range(COUNT)]
    for n, name in enumerate(names):
        if n % 2:  # half written in place, half written elsewhere and renamed in
            (home.inbox / name).write_text(f"Document number {n}. Nothing else to say.\n")
        else:
            (staging / name).write_text(f"Document number {n}. Nothing else to say.\n")
    for name in names[::2]:
        os.rename(staging / name, home.inbox / name)

    def finished():
        runs = home.runs()
        return runs if len(runs) >= COUNT and all(r["status"] != "queued" for r in runs) else None

    runs = wait_for(finished, timeout=120, what="1,000 runs to finish")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0, "".join(lines[-20:])

    runs = home.runs()
    assert len(runs) == COUNT, [r for r in runs if r["status"] != "succeeded"][:3]
    assert {r["status"] for r in runs} == {"succeeded"}
    assert sorted(r["input"] for r in runs) == sorted(str(home.inbox / name) for name in names)
    assert sorted(p.name for p in (home.root / "Done").iterdir()) == names  # no " (1)": none twice
    assert list(home.inbox.iterdir()) == []

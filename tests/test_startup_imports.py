"""What `gristmill run` imports before it is ready: libraries only the workflows that need them load.

Start-up is mostly imports (BENCHMARKS.md, issue 17); these keep the lazy ones lazy. The daemon
runs for real (`python -m daemon run`), with a logging handler that reports, at the ready line and
at a reload, the packages loaded and the threads running.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support import REPO, make_home

# Runs `python -m daemon run` in this process; at each of these log lines prints what is loaded, and
# leaves at the last one.
REPORTER = """\
import json, logging, os, runpy, sys, threading

EVENTS = {"gristmill ready": "ready", "workflows reloaded": "reloaded"}


class Report(logging.Handler):
    def emit(self, record):
        message = record.getMessage()
        for start, event in EVENTS.items():
            if message.startswith(start):
                loaded = sorted({name.split(".")[0] for name in sys.modules} | set(sys.modules))
                threads = [t.name for t in threading.enumerate()]
                print(json.dumps({"event": event, "modules": loaded, "threads": threads}), flush=True)
                if event == os.environ["REPORT_UNTIL"]:
                    os._exit(0)


logging.getLogger().addHandler(Report())
sys.argv = ["gristmill", "run"]
runpy.run_module("daemon", run_name="__main__", alter_sys=True)
"""

WATCH = """\
name: sort
trigger:
  watch: {path: ~/Inbox, settle_seconds: 0}
steps:
  - id: kind
    classify: {labels: {invoice: A bill, letter: Correspondence}}
  - write: {path: "~/Out/{{ file.stem }}.txt", content: "{{ kind.label }}"}
"""

SCHEDULE = """\
name: hello
trigger:
  schedule: {every: 1h}
steps:
  - prompt: Say hello.
"""

# Loaded at their first use: APScheduler with the first schedule (about 20 ms of start-up),
# price-parser at the first number not written plainly, the dashboard's modules only when it is on.
LAZY = {"apscheduler", "price_parser", "daemon.web.server"}


def _reports(home, until: str, after_ready=None) -> dict[str, dict]:
    env = {**home.env, "PYTHONPATH": str(REPO), "REPORT_UNTIL": until}
    proc = subprocess.Popen([sys.executable, "-c", REPORTER], env=env, cwd=home.root, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    reports: dict[str, dict] = {}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            report = json.loads(line)
            reports[report["event"]] = report
            if report["event"] == "ready" and after_ready is not None:
                after_ready()
            if report["event"] == until:
                break
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert until in reports, proc.stderr.read() if proc.stderr else ""
    return reports


def test_a_start_without_schedules_loads_no_scheduler_until_a_schedule_appears(tmp_path, standin):
    home = make_home(tmp_path, standin.url)
    home.write_workflow("sort.yaml", WATCH)

    reports = _reports(home, "reloaded", after_ready=lambda: home.write_workflow("hello.yaml", SCHEDULE))

    ready = reports["ready"]
    assert not LAZY & set(ready["modules"])
    assert "ollama" in ready["modules"]  # ready means ready to call the model: its client is made
    # A schedule added while running: APScheduler is loaded and its thread runs.
    reloaded = reports["reloaded"]
    assert "apscheduler" in reloaded["modules"]
    assert "APScheduler" in reloaded["threads"]


def test_a_start_with_a_schedule_starts_the_scheduler_before_ready(tmp_path, standin):
    home = make_home(tmp_path, standin.url)
    home.write_workflow("hello.yaml", SCHEDULE)

    ready = _reports(home, "ready")["ready"]

    assert "apscheduler" in ready["modules"]
    assert "APScheduler" in ready["threads"]

"""The one log configuration: JSON lines with the run's fields, journald priorities, one record one line."""

from __future__ import annotations

import io
import json
import logging
import os

import pytest

from daemon.logs import setup_logging, under_journald
from daemon.settings import LogFormat
from tests.dashboard_support import wait_finished
from tests.support import INVOICE
from tests.test_crash import Daemon, fast_home


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    root.handlers[:], level = saved
    root.setLevel(level)


def test_json_lines_carry_the_fields_given_as_extra(restore_logging):
    stream = io.StringIO()
    setup_logging(LogFormat.JSON, stream=stream)
    logging.getLogger("gristmill").info(
        "run %d done", 7, extra={"run_id": 7, "workflow": "w", "duration_ms": 12, "outcome": "succeeded"}
    )
    logging.getLogger("daemon.engine.longinput").warning("a module logger goes the same way")
    logging.getLogger("uvicorn.error").warning("and uvicorn's")
    logging.getLogger("httpx").info("a request line that nobody needs")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["message"] == "run 7 done" and lines[0]["level"] == "info"
    assert {k: lines[0][k] for k in ("run_id", "workflow", "duration_ms", "outcome")} == {
        "run_id": 7, "workflow": "w", "duration_ms": 12, "outcome": "succeeded",
    }  # fmt: skip
    assert "step" not in lines[0]  # only the fields that apply
    assert [line["logger"] for line in lines[1:]] == ["daemon.engine.longinput", "uvicorn.error"]


def test_a_newline_in_a_message_never_splits_the_line(restore_logging):
    stream = io.StringIO()
    setup_logging(LogFormat.TEXT, stream=stream)
    logging.getLogger("gristmill").warning("run 1 failed: %s", "bad\nname\r.txt\x1b[31m")
    (line,) = stream.getvalue().splitlines()
    assert line.endswith("WARNING run 1 failed: bad\\nname\\r.txt\\x1b[31m")


def test_under_journald_lines_start_with_the_priority(tmp_path, restore_logging):
    with open(tmp_path / "journal", "w+") as stream:
        info = os.fstat(stream.fileno())
        assert not under_journald(f"{info.st_dev}:{info.st_ino + 1}", stream)  # another stream: not the journal
        setup_logging(LogFormat.TEXT, journal_stream=f"{info.st_dev}:{info.st_ino}", stream=stream)
        log = logging.getLogger("gristmill")
        log.info("ready")
        log.warning("slow")
        log.error("failed")
        log.debug("hidden")
        stream.flush()
        stream.seek(0)
        assert stream.read().splitlines() == ["<6>INFO ready", "<4>WARNING slow", "<3>ERROR failed"]


def test_the_daemon_logs_json_with_run_fields_and_odd_file_names(tmp_path, standin):
    home = fast_home(tmp_path, standin.url)
    home.drop("two\nlines.txt", INVOICE)
    daemon = Daemon(home, GRISTMILL_LOG_FORMAT="json").start()
    try:
        wait_finished(home, 1)
    finally:
        assert daemon.stop() == 0
    lines = [json.loads(line) for line in daemon.log.splitlines()]  # every line is one JSON object
    (outcome,) = [line for line in lines if line.get("run_id")]
    assert outcome["workflow"] == "sort-inbox" and outcome["outcome"] == "succeeded"
    assert isinstance(outcome["duration_ms"], int) and "two\nlines.txt" in outcome["message"]

"""The run database's and the destination folders' outage gates in-process: backoff, said once, back once.

README, "Crashes, outages and stopping": the database failing and a destination that cannot take
files are outages, waited for with backoff capped at GRISTMILL_BACKOFF_MAX_SECONDS, logged once when
they start and once when they end. tests/test_faults.py shows it with real daemons on a full tmpfs.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from daemon.engine.resource_outage import FolderOutages, StoreOutage, backoff
from daemon.errors import DatabaseLost, StoreError


def _messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records]


def test_backoff_doubles_from_its_base_up_to_the_cap_and_jitter_takes_up_to_half():
    assert [backoff(n, 1.0, 8.0, lambda: 1.0) for n in range(0, 7)] == [1.0, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert [backoff(n, 0.5, 30.0, lambda: 0.0) for n in (1, 2, 8)] == [0.25, 0.5, 15.0]


def test_the_store_outage_backs_off_and_is_said_once_when_it_starts_and_once_when_it_ends(caplog):
    outage = StoreOutage(jitter=lambda: 1.0)
    assert (outage.is_down, outage.reason) == (False, None)
    with caplog.at_level(logging.INFO, logger="gristmill"):
        outage.ok()  # nothing to say while it works
        delays = [outage.failed(StoreError("database or disk is full"))]
        assert len(caplog.records) == 1  # said when it starts, not later
        delays += [outage.failed(StoreError("database or disk is full")) for _ in range(8)]
        assert (outage.is_down, outage.reason) == (True, "database or disk is full")
        outage.ok()
        outage.ok()
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert _messages(caplog) == [
        "the run database failed: database or disk is full; runs wait and are not lost, gristmill tries again",
        "the run database works again after 9 failed tries; going on",
    ]
    assert (outage.is_down, outage.reason) == (False, None)


def test_a_store_call_is_tried_again_until_it_works_and_a_fatal_error_or_a_stop_ends_it():
    outage = StoreOutage(base=0.001, cap=0.001, jitter=lambda: 0.0)
    answers = iter([StoreError("locked"), StoreError("locked"), "written"])

    def op() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert outage.call(op, threading.Event()) == "written" and not outage.is_down

    def lost() -> str:
        raise DatabaseLost("the database file was deleted")

    with pytest.raises(DatabaseLost):
        outage.call(lost, threading.Event())
    stopping = threading.Event()
    stopping.set()

    def locked() -> str:
        raise StoreError("locked")

    with pytest.raises(StoreError, match="locked"):
        outage.call(locked, stopping)


def test_each_folder_has_its_own_backoff_and_is_said_once_down_and_once_back(caplog, tmp_path: Path):
    full, other = tmp_path / "Full", tmp_path / "Other"
    folders = FolderOutages(jitter=lambda: 1.0)
    with caplog.at_level(logging.INFO, logger="gristmill"):
        folders.succeeded(1)  # nothing waits: nothing to say
        assert [folders.down(full, "the folder Full cannot take files", run_id=1) for _ in range(8)] == [
            1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0,
        ]  # fmt: skip
        assert folders.down(other, "the folder Other cannot take files", run_id=2) == 1.0
        assert folders.down(full, "the folder Full cannot take files", run_id=3) == 60.0  # a second run waits there
        assert folders.down_now() == [full, other]
        folders.succeeded(4)  # a run that waited on no folder brings none back
        folders.succeeded(1)
        folders.succeeded(1)
        folders.succeeded(3)  # the folder is back already: not said twice
    assert folders.down_now() == [other]
    assert _messages(caplog) == [
        "the folder Full cannot take files; runs that file there wait and are tried again, using up no attempt",
        "the folder Other cannot take files; runs that file there wait and are tried again, using up no attempt",
        f"the folder {full} takes files again; runs that waited on it go on",
    ]

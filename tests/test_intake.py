"""Queuing a file (daemon/engine/intake.py) in-process on a real SQLite store: what the run records, and refusals.

test_watch_app shows files queued through the whole App; these pin the run's context (shown by
`runs --json` as `context`, read by templates as `file.subfolder`) and the sentences of the refusals.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from daemon.domain import Origin
from daemon.engine.intake import Intake
from daemon.errors import InputError
from daemon.store import RunStore, make_engine
from daemon.store.migrate import upgrade
from daemon.workflow import Workflow


@pytest.fixture
def intake(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'runs.db'}")
    upgrade(engine)
    woken: list[int] = []
    yield Intake(RunStore(engine), max_attempts=4, wake=lambda: woken.append(1)), woken
    engine.dispose()


def _workflow(inbox) -> Workflow:
    return Workflow.model_validate({
        "name": "sort", "trigger": {"watch": {"path": str(inbox), "recursive": True}}, "steps": [{"summarise": {}}],
    })  # fmt: skip


def test_a_queued_file_records_its_size_time_subfolder_and_version(intake, tmp_path):
    queue, woken = intake
    (tmp_path / "Inbox" / "2026" / "May").mkdir(parents=True)
    path = tmp_path / "Inbox" / "2026" / "May" / "bill.txt"
    path.write_bytes(b"12345")
    os.utime(path, ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))

    run, created = queue.file(_workflow(tmp_path / "Inbox"), path)

    assert created and woken == [1] and (run.max_attempts, run.input_path) == (4, str(path))
    assert run.context == {
        "size": 5,
        "mtime": datetime.fromtimestamp(1_700_000_000.123456789, UTC).isoformat(),  # in UTC, with its offset
        "subfolder": "2026/May",
        "version": f"{os.stat(path).st_ino}:1700000000123456789",
    }
    top = tmp_path / "Inbox" / "top.txt"
    top.write_bytes(b"top")
    assert queue.file(_workflow(tmp_path / "Inbox"), top)[0].context["subfolder"] == ""


def test_a_manual_trigger_is_never_deduplicated_and_a_watched_copy_is(intake, tmp_path):
    queue, _ = intake
    (tmp_path / "Inbox").mkdir()
    first, copy = tmp_path / "Inbox" / "a.txt", tmp_path / "Inbox" / "b.txt"
    first.write_bytes(b"same")
    copy.write_bytes(b"same")
    workflow = _workflow(tmp_path / "Inbox")
    assert queue.file(workflow, first)[0].dedupe_key is not None
    skipped, created = queue.file(workflow, copy)
    assert created and skipped.status.value == "skipped"
    manual, created = queue.file(workflow, copy, trigger=Origin.MANUAL)
    assert created and manual.status.value == "queued" and manual.dedupe_key is None


def test_a_link_or_a_missing_file_is_refused_in_one_sentence(intake, tmp_path):
    queue, _ = intake
    (tmp_path / "Inbox").mkdir()
    target, link = tmp_path / "Inbox" / "real.txt", tmp_path / "Inbox" / "link.txt"
    target.write_bytes(b"x")
    link.symlink_to(target)
    workflow = _workflow(tmp_path / "Inbox")
    with pytest.raises(InputError) as caught:
        queue.file(workflow, link)
    assert str(caught.value) == f"{link} is not a regular file (symbolic links are not followed)"
    with pytest.raises(InputError) as caught:
        queue.file(workflow, tmp_path / "Inbox" / "gone.txt")
    assert str(caught.value) == f"{tmp_path / 'Inbox' / 'gone.txt'} does not exist"

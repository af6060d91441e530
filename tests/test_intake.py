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


def test_a_dry_run_is_queued_as_one(intake, tmp_path):
    queue, _ = intake
    (tmp_path / "Inbox").mkdir()
    path = tmp_path / "Inbox" / "a.txt"
    path.write_bytes(b"dry")
    run, created = queue.file(_workflow(tmp_path / "Inbox"), path, trigger=Origin.MANUAL, dry_run=True)
    assert created and run.dry_run and run.status.value == "queued"


def test_a_refused_file_is_recorded_skipped_with_its_reason_once_per_path(intake, tmp_path):
    queue, woken = intake
    link = tmp_path / "Inbox" / "link.txt"
    workflow = _workflow(tmp_path / "Inbox")
    reason = "a symbolic link is not followed"
    first, again = queue.refuse(workflow, link, reason), queue.refuse(workflow, link, reason)
    stored = queue.store.get(first.id)
    assert again.id == first.id and woken == []
    assert (stored.status.value, stored.error, stored.input_path) == ("skipped", reason, str(link))


def test_a_skipped_input_is_recorded_once_per_key_with_its_reason_and_context(intake, tmp_path):
    queue, woken = intake
    workflow = _workflow(tmp_path / "Inbox")
    kwargs = {"trigger": Origin.MAIL, "dedupe_key": "mail:INBOX:7:42", "reason": "over the size limit"}
    run, created = queue.skipped(workflow, context={"subject": "big"}, **kwargs)
    again, created_again = queue.skipped(workflow, context={"subject": "big"}, **kwargs)
    assert created and not created_again and again.id == run.id and woken == []
    assert (run.status.value, run.error, run.context) == ("skipped", "over the size limit", {"subject": "big"})
    assert run.max_attempts == 4


def test_a_tick_is_queued_once_with_the_intakes_attempts_and_a_manual_trigger_every_time(intake, tmp_path):
    queue, woken = intake
    workflow = _workflow(tmp_path / "Inbox")
    tick, created = queue.tick(workflow, "2026-12-04T10:00:00+00:00", {"tick": "10:00"})
    assert created and (tick.trigger, tick.dedupe_key, tick.max_attempts, tick.context) == (
        Origin.SCHEDULE, "2026-12-04T10:00:00+00:00", 4, {"tick": "10:00"},
    )  # fmt: skip
    assert queue.tick(workflow, "2026-12-04T10:00:00+00:00") == (tick, False)
    manual, created = queue.tick(workflow, None, dry_run=True)
    assert created and (manual.trigger, manual.dedupe_key, manual.dry_run) == (Origin.MANUAL, None, True)
    assert woken == [1, 1]

"""Watched files through the real App (store, intake, workers): backlog order, once, failures."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from daemon.app import App
from daemon.domain import RunStatus
from daemon.settings import Settings

FILED = """name: filed
trigger:
  watch: {{path: {inbox}, settle_seconds: 0.2}}
steps:
  - route: {{default: {{move_to: {done}}}}}
"""

BROKEN = """name: broken
trigger:
  watch: {{path: {inbox}, settle_seconds: 0.2}}
on_failure: {{move_to: "{failed}/{{{{ file.subfolder or 'top' }}}}"}}
steps:
  - write: {{path: "{done}/x.txt", content: "{{{{ no_such_thing.at_all }}}}"}}
"""


@pytest.fixture
def make_app(tmp_path, standin):
    """An App on a private database and workflows folder, closed after the test."""
    apps: list[App] = []

    def make(text: str, **settings) -> App:
        (tmp_path / "workflows").mkdir(exist_ok=True)
        (tmp_path / "workflows" / "w.yaml").write_text(
            text.format(inbox=tmp_path / "Inbox", done=tmp_path / "Done", failed=tmp_path / "Failed")
        )
        app = App(Settings(
            data_dir=tmp_path / "data", workflows=tmp_path / "workflows", ollama_url=standin.url, **settings
        ))  # fmt: skip
        assert not app.errors, app.errors
        apps.append(app)
        return app

    (tmp_path / "Inbox").mkdir()
    yield make
    for app in apps:
        app.close()


def _drop(folder: Path, name: str, data: bytes, *, age: float = 60.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    os.utime(path, (time.time() - age, time.time() - age))
    return path


def _runs(app: App):
    return sorted(app.store.history(limit=10_000), key=lambda r: r.id)


def test_the_backlog_is_queued_oldest_first_and_runs_once(make_app, tmp_path):
    inbox = tmp_path / "Inbox"
    for name, age in (("new.txt", 100), ("oldest.txt", 900), ("middle.txt", 500)):
        _drop(inbox, name, name.encode(), age=age)
    app = make_app(FILED)

    report = app.run_once()

    runs = _runs(app)
    assert [Path(r.input_path).name for r in runs] == ["oldest.txt", "middle.txt", "new.txt"]
    assert report.counts[RunStatus.SUCCEEDED] == 3
    assert sorted(p.name for p in (tmp_path / "Done").iterdir()) == ["middle.txt", "new.txt", "oldest.txt"]
    again = make_app(FILED)  # a second `run --once`
    assert again.run_once().counts[RunStatus.SUCCEEDED] == 0 and len(_runs(again)) == 3


SCOPED = """name: scoped
trigger:
  watch: {{path: {inbox}, settle_seconds: 0.2}}
steps:
  - write:
      path: "{done}/{{{{ file.stem }}}}.md"
      content: >-
        {{{{ run.id }}}} {{{{ run.workflow }}}} {{{{ run.started_at[:4] }}}} {{{{ file.name }}}} {{{{ file.size }}}}
"""


def test_templates_see_the_run_and_the_file(make_app, tmp_path):
    _drop(tmp_path / "Inbox", "note.txt", b"hello", age=60)
    app = make_app(SCOPED)

    app.run_once()

    (run,) = _runs(app)
    assert run.status is RunStatus.SUCCEEDED, run.error
    started = run.started_at.year
    assert (tmp_path / "Done" / "note.md").read_text() == f"{run.id} scoped {started} note.txt 5"


def test_trigger_runs_the_file_it_was_given_now_and_leaves_older_queued_runs_queued(make_app, tmp_path):
    older = _drop(tmp_path / "Inbox", "older.txt", b"older", age=900)
    given = _drop(tmp_path / "Inbox", "given.txt", b"given", age=60)
    app = make_app(FILED)
    queued, _ = app.intake.file(app.workflows["filed"], older)  # due, and older than the one asked for

    run = app.trigger("filed", given)

    assert (run.status, run.input_path, run.attempts) == (RunStatus.SUCCEEDED, str(given), 1)
    assert app.store.get(queued.id).status is RunStatus.QUEUED
    assert (tmp_path / "Done" / "given.txt").exists() and older.exists()


PRIVATE_BROKEN = """name: private
record: metadata
trigger:
  watch: {{path: {inbox}, settle_seconds: 0.2}}
steps:
  - id: summary
    summarise: {{max_words: 20}}
  - write: {{path: "{done}/x.txt", content: "{{{{ no_such_thing.at_all }}}}"}}
"""


def test_a_metadata_only_run_that_fails_for_good_keeps_no_text_of_the_document(make_app, tmp_path):
    _drop(tmp_path / "Inbox", "secret.txt", b"The account number is 12345678.", age=60)
    app = make_app(PRIVATE_BROKEN, max_attempts=1)

    app.run_once()

    (run,) = _runs(app)
    assert run.status is RunStatus.FAILED
    assert set(run.outputs["summary"]["text"]) == {"sha256", "chars"}  # the summary's digest, not its words


def test_the_same_content_under_two_names_runs_once_and_the_copy_is_skipped(make_app, tmp_path):
    _drop(tmp_path / "Inbox", "a.txt", b"same bytes", age=200)
    _drop(tmp_path / "Inbox", "copy of a.txt", b"same bytes", age=100)
    app = make_app(FILED)

    app.run_once()

    first, copy = _runs(app)
    assert (first.status, Path(first.input_path).name) == (RunStatus.SUCCEEDED, "a.txt")
    assert copy.status is RunStatus.SKIPPED and copy.error == f"duplicate of run {first.id} (same content)"
    assert (tmp_path / "Inbox" / "copy of a.txt").exists()  # a skipped file is left alone


def test_a_file_deleted_before_its_run_starts_is_skipped_with_the_reason(make_app, tmp_path):
    path = _drop(tmp_path / "Inbox", "gone.txt", b"here for a moment")
    app = make_app(FILED)
    app.intake.file(app.workflows["filed"], path)
    path.unlink()

    app.run_once()

    (run,) = _runs(app)
    assert run.status is RunStatus.SKIPPED and run.error == f"{path} was removed before its run started"


def test_a_file_renamed_before_its_run_starts_is_followed_to_its_new_name(make_app, tmp_path):
    path = _drop(tmp_path / "Inbox", "scan0001.txt", b"a scanned letter")
    app = make_app(FILED)
    queued, _ = app.intake.file(app.workflows["filed"], path)
    path.rename(tmp_path / "Inbox" / "letter from Anna.txt")

    app.run_once()

    (run,) = _runs(app)
    assert run.id == queued.id and run.status is RunStatus.SUCCEEDED
    assert run.input_path == str(tmp_path / "Inbox" / "letter from Anna.txt")
    assert (tmp_path / "Done" / "letter from Anna.txt").read_bytes() == b"a scanned letter"


def test_a_file_skipped_as_missing_runs_when_it_turns_up_under_a_new_name(make_app, tmp_path):
    path = _drop(tmp_path / "Inbox", "scan0002.txt", b"another letter")
    app = make_app(FILED)
    app.intake.file(app.workflows["filed"], path)
    moved_away = path.rename(tmp_path / "elsewhere.txt")
    app.run_once()
    moved_away.rename(tmp_path / "Inbox" / "renamed.txt")

    again = make_app(FILED)
    again.run_once()

    (run,) = _runs(again)
    assert run.status is RunStatus.SUCCEEDED and run.input_path.endswith("renamed.txt")
    assert (tmp_path / "Done" / "renamed.txt").read_bytes() == b"another letter"


def test_a_file_changed_before_its_run_starts_is_queued_again_with_its_new_content(make_app, tmp_path):
    path = _drop(tmp_path / "Inbox", "draft.txt", b"first version")
    app = make_app(FILED)
    app.intake.file(app.workflows["filed"], path)
    _drop(tmp_path / "Inbox", "draft.txt", b"second, longer version")

    app.run_once()

    old, new = _runs(app)
    # The start-up scan may queue the new content before the old run starts; either way one run has it.
    assert old.status is RunStatus.SKIPPED and old.error.startswith("draft.txt changed after it was queued; ")
    assert old.error.endswith((f"queued again as run {new.id}", f"run {new.id} has that content"))
    assert new.status is RunStatus.SUCCEEDED
    assert (tmp_path / "Done" / "draft.txt").read_bytes() == b"second, longer version"


def test_on_failure_moves_the_file_without_overwriting(make_app, tmp_path):
    _drop(tmp_path / "Failed" / "top", "bad.txt", b"an earlier failure")
    _drop(tmp_path / "Inbox", "bad.txt", b"this one fails")
    app = make_app(BROKEN, max_attempts=1)

    app.run_once()

    (run,) = _runs(app)
    assert run.status is RunStatus.FAILED and "no_such_thing" in run.error
    assert not (tmp_path / "Inbox" / "bad.txt").exists()
    assert (tmp_path / "Failed" / "top" / "bad (1).txt").read_bytes() == b"this one fails"
    assert (tmp_path / "Failed" / "top" / "bad.txt").read_bytes() == b"an earlier failure"


def test_without_on_failure_a_failed_file_stays_where_it_is(make_app, tmp_path):
    _drop(tmp_path / "Inbox", "bad.txt", b"this one fails")
    app = make_app(BROKEN.replace("on_failure", "# on_failure"), max_attempts=1)

    app.run_once()

    (run,) = _runs(app)
    assert run.status is RunStatus.FAILED
    assert (tmp_path / "Inbox" / "bad.txt").read_bytes() == b"this one fails"


def test_a_file_is_read_to_its_end_even_when_it_grew_after_it_was_measured(tmp_path):
    from daemon.engine.runner import _read_all

    path = tmp_path / "growing.txt"
    path.write_bytes(bytes(range(256)) * 20)
    for measured in (0, 3, 5119, 5120, 9000):  # what fstat said; one read when it still holds
        fd = os.open(path, os.O_RDONLY)
        try:
            assert _read_all(fd, measured) == path.read_bytes()
        finally:
            os.close(fd)


def test_a_symlink_in_the_backlog_is_recorded_as_skipped_once(make_app, tmp_path):
    (tmp_path / "secret.txt").write_text("outside the inbox")
    (tmp_path / "Inbox" / "link.txt").symlink_to(tmp_path / "secret.txt")
    app = make_app(FILED)

    app.run_once()
    make_app(FILED).run_once()

    (run,) = _runs(app)
    link = tmp_path / "Inbox" / "link.txt"
    assert run.status is RunStatus.SKIPPED and run.input_path == str(link)
    assert run.error == f"{link} is a symbolic link; gristmill does not follow links"
    assert (tmp_path / "secret.txt").exists() and not (tmp_path / "Done").exists()


RECURSIVE = """name: filer
trigger:
  watch: {{path: {inbox}, recursive: true, settle_seconds: 0.2}}
steps:
  - route: {{default: {{move_to: {inbox}/Filed}}}}
  - write: {{path: "{inbox}/Notes/{{{{ file.stem }}}}.md", content: "note"}}
"""


def test_a_recursive_watch_does_not_take_its_own_destinations_as_input(make_app, tmp_path):
    inbox = tmp_path / "Inbox"
    _drop(inbox, "a.txt", b"to be filed")
    make_app(RECURSIVE).run_once()
    again = make_app(RECURSIVE)  # a restart: its start-up scan sees Filed/ and Notes/

    again.run_once()

    (run,) = _runs(again)
    assert run.status is RunStatus.SUCCEEDED and Path(run.input_path).name == "a.txt"
    assert (inbox / "Filed" / "a.txt").exists() and (inbox / "Notes" / "a.md").exists()


MOVED_THEN_BROKEN = """name: moved
trigger:
  watch: {{path: {inbox}, settle_seconds: 0.2}}
steps:
  - id: filed
    route: {{default: {{move_to: {done}}}}}
  - write: {{path: "{done}/x.txt", content: "{{{{ no_such_thing.at_all }}}}"}}
"""


def test_a_run_that_fails_after_moving_its_file_says_where_the_file_is(make_app, tmp_path):
    _drop(tmp_path / "Inbox", "bad.txt", b"moved, then the write fails")
    app = make_app(MOVED_THEN_BROKEN, max_attempts=1)

    app.run_once()

    (run,) = _runs(app)
    moved = tmp_path / "Done" / "bad.txt"
    assert run.status is RunStatus.FAILED and "no_such_thing" in run.error
    assert run.error.endswith(f"; the file is at {moved}, where an earlier step of this run moved it")
    assert moved.read_bytes() == b"moved, then the write fails"
    assert not (tmp_path / "Inbox" / "bad.txt").exists()


def test_on_failure_takes_the_file_from_where_an_earlier_step_moved_it(make_app, tmp_path):
    _drop(tmp_path / "Inbox", "bad.txt", b"moved, then the write fails")
    on_failure = 'on_failure: {{move_to: "{failed}"}}\nsteps:'
    app = make_app(MOVED_THEN_BROKEN.replace("steps:", on_failure, 1), max_attempts=1)

    app.run_once()

    (run,) = _runs(app)
    failed = tmp_path / "Failed" / "bad.txt"
    assert run.status is RunStatus.FAILED
    assert run.error.endswith(f"; the file was moved to {failed} (on_failure)")
    assert failed.read_bytes() == b"moved, then the write fails"
    assert not (tmp_path / "Done" / "bad.txt").exists()


CHAINED = """name: first
trigger:
  watch: {{path: {inbox}, settle_seconds: 0.2}}
steps:
  - route: {{default: {{run: second}}}}
"""

SECOND = """name: second
trigger: {{watch: {{path: {other}, settle_seconds: 0.2}}}}
steps:
  - route: {{default: {{move_to: {done}}}}}
"""


def test_a_run_route_queues_the_other_workflow_on_the_same_file(make_app, tmp_path):
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "second.yaml").write_text(SECOND.format(other=tmp_path / "Other", done=tmp_path / "Done"))
    (tmp_path / "Other").mkdir()
    _drop(tmp_path / "Inbox", "a.txt", b"for the second workflow")
    app = make_app(CHAINED)

    app.run_once()

    first, second = _runs(app)
    assert (first.workflow, first.status) == ("first", RunStatus.SUCCEEDED)
    assert (first.outputs["route"]["action"], first.outputs["route"]["destination"]) == ("run", "second")
    assert (second.workflow, second.status) == ("second", RunStatus.SUCCEEDED)
    assert second.input_path == str(tmp_path / "Inbox" / "a.txt")
    assert [p.name for p in (tmp_path / "Done").iterdir()] == ["a.txt"]

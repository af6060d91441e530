"""Command-line mistakes are one sentence and exit 2: unknown workflow names, a FILE for a schedule."""

from __future__ import annotations

import pytest

from tests.support import make_home


@pytest.fixture
def home(tmp_path):
    home = make_home(tmp_path, "http://127.0.0.1:9")  # no model call is made in these tests
    home.use_example("sort-inbox.yaml")
    home.use_example("daily-digest.yaml")
    return home


def test_retry_failed_of_an_unknown_workflow_is_bad_usage(home):
    result = home.cli("retry", "--failed", "--workflow", "nosuch")
    assert result.returncode == 2
    assert result.stderr == (
        "gristmill: no workflow named 'nosuch' is loaded or has runs; list them with: gristmill workflows\n"
    )


def test_retry_failed_of_a_misspelt_workflow_suggests_the_name(home):
    result = home.cli("retry", "--failed", "--workflow", "sort-inbx")
    assert result.returncode == 2 and "did you mean 'sort-inbox'?" in result.stderr


def test_retry_failed_of_a_loaded_workflow_without_runs_is_fine(home):
    result = home.cli("retry", "--failed", "--workflow", "sort-inbox")
    assert result.returncode == 0 and result.stdout == "queued again: none\n"


def test_retry_failed_of_a_removed_workflow_with_history_is_fine(home):
    home.cli("trigger", "daily-digest", check=True)  # nothing new: a skipped run, no model call
    (home.workflows / "daily-digest.yaml").unlink()
    result = home.cli("retry", "--failed", "--workflow", "daily-digest")
    assert result.returncode == 0, result.stderr


def test_trigger_of_a_scheduled_workflow_with_a_file_refuses_the_file(home):
    doc = home.drop("note.txt", "hello")
    result = home.cli("trigger", "daily-digest", str(doc))
    assert result.returncode == 2
    assert result.stderr == (
        "gristmill: workflow 'daily-digest' is started by its schedule trigger and takes no FILE "
        "(it reads its own input); run it with: gristmill trigger daily-digest\n"
    )
    assert home.runs() == []  # nothing was recorded


def test_trigger_of_a_watch_workflow_without_a_file_asks_for_one(home):
    result = home.cli("trigger", "sort-inbox")
    assert result.returncode == 2 and "give one: gristmill trigger sort-inbox FILE" in result.stderr

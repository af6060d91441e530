"""Folder mistakes in workflows, each one sentence in `check` and in `run`: a watch path that is a file,
a watched folder that does not exist yet, a file in the way of a destination folder."""

from __future__ import annotations

import pytest

from tests.support import INVOICE, make_home

WATCH = """\
name: filing
trigger:
  watch:
    path: {watch}
    settle_seconds: 0
steps:
  - id: kind
    classify: {{labels: [invoice, letter]}}
  - route:
      by: kind
      routes:
        invoice: {{move_to: {dest}}}
  - write:
      path: {write}/{{{{ file.stem }}}}.md
      content: "{{{{ kind.label }}}}"
"""


@pytest.fixture
def home(tmp_path, standin):
    return make_home(tmp_path, standin.url)


def _workflow(home, *, watch=None, dest=None, write=None) -> None:
    home.write_workflow("filing.yaml", WATCH.format(
        watch=watch or home.inbox, dest=dest or home.docs / "Invoices", write=write or home.docs / "Notes",
    ))  # fmt: skip


def test_a_watch_path_that_is_a_file_is_an_error_in_check_and_run(home):
    not_a_folder = home.root / "Inbox.txt"
    not_a_folder.write_text("a file, not a folder")
    _workflow(home, watch=not_a_folder)
    sentence = f"key 'trigger.watch.path': {not_a_folder} is a file, not a folder; path names the folder to watch"

    checked = home.cli("check")
    assert checked.returncode == 2, checked.stdout
    assert f"{home.workflows / 'filing.yaml'}, line 4, {sentence}" in checked.stdout

    ran = home.cli("run", "--once")
    assert sentence in ran.stderr
    assert "Traceback" not in ran.stderr
    assert not_a_folder.read_text() == "a file, not a folder"


def test_a_missing_watched_folder_is_created_and_said_so(home):
    missing = home.root / "Scans" / "Incoming"
    _workflow(home, watch=missing)

    checked = home.cli("check")
    assert checked.returncode == 0, checked.stdout
    assert f"workflow filing: the watched folder {missing} does not exist yet; gristmill run creates it" in (
        checked.stdout
    )
    assert not missing.exists()  # check looks, it does not change anything

    ran = home.cli("run", "--once")
    assert ran.returncode == 0, ran.stderr
    assert f"created the watched folder {missing} for filing (it did not exist)" in ran.stderr
    assert missing.is_dir()
    assert "does not exist" not in home.cli("check").stdout


def test_a_file_in_the_way_of_a_move_is_an_error_in_check_and_fails_the_run_once_in_a_sentence(home):
    blocker = home.root / "Filed"
    blocker.write_text("I am a file")
    _workflow(home, dest=blocker / "Invoices")
    home.drop("invoice.txt", INVOICE)

    checked = home.cli("check")
    assert checked.returncode == 2, checked.stdout
    assert (
        f"error: workflow filing puts files into {blocker / 'Invoices'}, but {blocker} is in the way of "
        f"{blocker / 'Invoices'}: a file, not a folder"
    ) in checked.stdout

    ran = home.cli("run", "--once")
    assert ran.returncode == 1
    (run,) = home.runs()
    assert run["status"] == "failed" and run["attempts"] == 1
    assert run["error"] == (
        f"cannot put files into {blocker / 'Invoices'}: {blocker} is a file, not a folder; move that file "
        "away or change the destination in the workflow, then: gristmill retry --failed"
    )
    assert "internal error" not in ran.stderr and "Traceback" not in ran.stderr
    assert (home.inbox / "invoice.txt").read_text() == INVOICE
    assert blocker.read_text() == "I am a file"


def test_a_file_where_a_write_folder_must_be_fails_the_run_once_in_a_sentence(home):
    notes = home.docs / "Notes"
    notes.parent.mkdir(parents=True)
    notes.write_text("not a folder")
    _workflow(home, write=notes)
    home.drop("letter.txt", "Dear Anna, a letter from Ben. Yours, Ben")

    checked = home.cli("check")
    assert checked.returncode == 2, checked.stdout
    assert f"error: workflow filing puts files into {notes}, but {notes} is a file, not a folder" in checked.stdout

    home.cli("run", "--once")
    (run,) = home.runs()
    assert run["status"] == "failed" and run["attempts"] == 1
    assert run["error"].startswith(f"cannot put files into {notes}: it is a file, not a folder; ")
    assert notes.read_text() == "not a folder"


def test_a_folder_still_to_be_created_is_fine(home):
    _workflow(home, dest=home.root / "New" / "Deep" / "Invoices")
    home.drop("invoice.txt", INVOICE)

    assert home.cli("check").returncode == 0
    home.cli("run", "--once", check=True)
    assert (home.root / "New" / "Deep" / "Invoices" / "invoice.txt").read_text() == INVOICE

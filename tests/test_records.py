"""Records a user can trust, through the real CLI: dry runs, every drop, file names that are not UTF-8."""

from __future__ import annotations

import json
import os

import pytest

from tests.support import INVOICE, LETTER, make_home


@pytest.fixture
def home(tmp_path, standin):
    home = make_home(tmp_path, standin.url)
    path = home.use_example("sort-inbox.yaml")
    path.write_text(path.read_text().replace("settle_seconds: 2", "settle_seconds: 0.2"))
    return home


def test_a_dry_run_is_marked_and_consumed_by_no_digest_and_no_dedupe(home):
    home.use_example("daily-digest.yaml")
    home.drop("letter.txt", LETTER)
    home.cli("run", "--once", check=True)  # the letter is filed for real
    invoice = home.drop("invoice.txt", INVOICE)

    dry_digest = json.loads(home.cli("trigger", "daily-digest", "--dry-run", "--json", check=True).stdout)
    dry_filing = json.loads(home.cli("trigger", "sort-inbox", str(invoice), "--dry-run", "--json", check=True).stdout)
    shown = home.cli("show", str(dry_filing["id"]), check=True).stdout
    listed = home.cli("runs", check=True).stdout

    assert dry_digest["dry_run"] is True and dry_filing["dry_run"] is True
    assert "dry run" in shown and "dry run" in listed
    assert invoice.exists() and not (home.docs / "Digests").exists()
    # The real digest still sees the letter (the dry digest moved no `since`), and not the dry filing.
    real = json.loads(home.cli("trigger", "daily-digest", "--json", check=True).stdout)
    assert real["status"] == "succeeded" and real["dry_run"] is False
    (digest,) = (home.docs / "Digests").iterdir()
    assert "- letter.txt: letter" in digest.read_text() and "invoice.txt" not in digest.read_text()
    # The dry run did not make the invoice a duplicate: the daemon files it for real.
    home.cli("run", "--once", check=True)
    runs = [r for r in home.runs() if r["input"] == str(invoice)]
    assert [(r["status"], r["dry_run"]) for r in runs] == [("succeeded", True), ("succeeded", False)]
    assert (home.docs / "Invoices" / "invoice.txt").read_text() == INVOICE


def test_the_same_file_dropped_again_is_recorded_and_logged(home):
    home.drop("letter.txt", LETTER)
    home.cli("run", "--once", check=True)
    (first,) = home.runs()

    home.drop("letter.txt", LETTER)  # the same name and content, after the first was filed
    again = home.cli("run", "--once", check=True)
    home.cli("run", "--once", check=True)  # a second look at the same drop records nothing new

    first_run, duplicate = home.runs()
    assert first_run == first
    assert duplicate["status"] == "skipped" and duplicate["input"] == first["input"]
    assert duplicate["error"] == f"duplicate of run {first['id']} (the same file dropped again)"
    assert f"run {duplicate['id']} sort-inbox {home.inbox / 'letter.txt'} skipped: duplicate of run" in again.stderr
    assert (home.inbox / "letter.txt").exists()  # a duplicate is left where it is


def test_a_file_name_that_is_not_utf8_is_processed_like_any_other(home):
    raw = os.fsencode(home.inbox) + b"/caf\xe9 invoice.txt"
    with open(raw, "w") as out:
        out.write(INVOICE)
    home.use_example("daily-digest.yaml")

    done = home.cli("run", "--once")

    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    filed = os.fsencode(home.docs) + b"/Invoices/caf\xe9 invoice.txt"
    with open(filed) as kept:
        assert kept.read() == INVOICE
    with open(os.fsencode(home.docs) + b"/Summaries/caf\xe9 invoice.md", encoding="utf-8") as summary:
        assert summary.read().startswith("# caf\ufffd invoice.txt (invoice)")  # valid UTF-8 for its reader
    (run,) = home.runs()
    assert run["status"] == "succeeded"
    assert os.fsencode(run["input"]) == raw  # recorded losslessly: the exact bytes come back
    assert os.fsencode(run["outputs"]["filed"]["destination"]) == filed
    for command in (["runs"], ["show", str(run["id"])]):
        shown = home.cli(*command)
        assert shown.returncode == 0 and "caf\\udce9 invoice.txt" in shown.stdout, shown.stderr  # as escaped
    digest = json.loads(home.cli("trigger", "daily-digest", "--json", check=True).stdout)
    assert digest["status"] == "succeeded"

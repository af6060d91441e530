"""`gristmill correct` over real runs: recorded beside the run, checked against the workflow file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemon.standin import StandinServer
from daemon.store import RunStore, make_engine
from daemon.store.corrections import Change, CorrectionStore
from daemon.store.migrate import upgrade
from tests.support import INVOICE, LETTER, make_home
from tests.test_search import INVOICES_WORKFLOW


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """Two real runs, made once for the module; the tests add corrections to different steps."""
    standin = StandinServer().start()
    try:
        home = make_home(tmp_path_factory.mktemp("corrections"), standin.url)
        home.use_example("sort-inbox.yaml")
        home.write_workflow("invoices.yaml", INVOICES_WORKFLOW)
        home.drop("letter.txt", LETTER)
        home.drop("bill.txt", INVOICE, folder=home.root / "Invoices")
        home.cli("run", "--once", check=True)
    finally:
        standin.stop()
    return home


def _ids(home) -> dict[str, int]:
    return {Path(r["input"]).name: r["id"] for r in home.runs()}


def _show(home, run_id: int) -> dict:
    return json.loads(home.cli("show", str(run_id), "--json", check=True).stdout)


def test_a_label_correction_is_recorded_and_the_original_stays(home):
    letter = _ids(home)["letter.txt"]
    done = home.cli("correct", str(letter), "--step", "kind", "--label", "Receipt", "--json", check=True)
    recorded = json.loads(done.stdout)
    assert recorded["change"] == {"label": "receipt"}  # matched to the declared label's spelling
    assert recorded["output"] == {"label": "receipt", "confidence": 1.0}
    assert recorded["original"] == {"label": "letter", "confidence": 0.9}
    assert recorded["author"] and recorded["created_at"]

    shown = _show(home, letter)
    assert shown["outputs"]["kind"] == {"label": "letter", "confidence": 0.9}  # the record is untouched
    assert shown["corrected"] is True
    assert [c["step"] for c in shown["corrections"]] == ["kind"]
    corrected = {Path(r["input"]).name: r["corrected"] for r in home.runs()}
    assert corrected == {"letter.txt": True, "bill.txt": False}


def test_field_corrections_are_typed_and_accumulate(home):
    bill = _ids(home)["bill.txt"]
    home.cli(
        "correct", str(bill), "--step", "fields", "--set", "vendor=Globex", "--set", "invoice_number=0042", check=True
    )
    home.cli("correct", str(bill), "--step", "fields", "--set", "due_date=2027-01-31", check=True)
    latest = _show(home, bill)["corrections"][-1]
    assert latest["output"]["vendor"] == "Globex"
    assert latest["output"]["invoice_number"] == "0042"  # a string field keeps the text as typed
    assert latest["output"]["due_date"] == "2027-01-31"
    assert latest["change"] == {"fields": {"due_date": "2027-01-31"}}


def test_a_text_correction(home):
    letter = _ids(home)["letter.txt"]
    home.cli("correct", str(letter), "--step", "summary", "--text", "Ben thanks Anna for her letter.", check=True)
    assert _show(home, letter)["corrections"][-1]["output"]["text"] == "Ben thanks Anna for her letter."


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--step", "kind", "--label", "postcard"],
            "'postcard' is not a label of step 'kind'; its labels are: invoice",
        ),
        (["--step", "nope", "--label", "letter"], "has no step 'nope'; its steps are: summary, kind"),
        (["--step", "kind", "--text", "x"], "step 'kind' is a classify step; --text is for summarise and prompt"),
        (["--step", "kind"], "give exactly one of --label, --set FIELD=VALUE"),
        (["--step", "kind", "--label", "letter", "--text", "x"], "give exactly one of"),
        (["--step", "summary", "--set", "novalue"], "is a summarise step; --set is for extract"),
    ],
)
def test_mistakes_are_one_sentence_and_exit_2(home, args, message):
    letter = _ids(home)["letter.txt"]
    before = _show(home, letter)["corrections"]
    result = home.cli("correct", str(letter), *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert _show(home, letter)["corrections"] == before


def test_unknown_run_and_wrong_field(home):
    assert home.cli("correct", "999", "--step", "kind", "--label", "letter").returncode == 2
    bill = _ids(home)["bill.txt"]
    result = home.cli("correct", str(bill), "--step", "fields", "--set", "colour=red")
    assert result.returncode == 2 and "has no field colour" in result.stderr


def test_the_store_api_without_a_workflow_file(home):
    """What eval and export use: the latest correction of each step is the reference."""
    engine = make_engine(f"sqlite:///{home.data / 'gristmill.db'}")
    upgrade(engine)
    try:
        store, corrections = RunStore(engine), CorrectionStore(engine)
        letter = _ids(home)["letter.txt"]
        first = corrections.add(letter, "kind", Change.label_of("invoice"), author="test")
        second = corrections.add(letter, "kind", Change.label_of("receipt"), author="test")
        assert corrections.effective(workflow="sort-inbox")[(letter, "kind")] == second
        assert corrections.effective(workflow="invoices", run_ids=[letter]) == {}
        assert [c.id for c in corrections.for_run(letter)][-2:] == [first.id, second.id]
        assert second.original == store.get(letter).outputs["kind"]
        assert corrections.corrected([letter, letter + 1000]) == {letter}
    finally:
        engine.dispose()

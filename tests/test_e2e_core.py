"""End to end: the real CLI in a subprocess, the shipped examples, the Ollama stand-in."""

from __future__ import annotations

import json

import pytest

from daemon.standin import StandinServer
from tests.support import INVOICE, LETTER, RECEIPT, free_port, make_home


@pytest.fixture
def home(tmp_path, standin):
    home = make_home(tmp_path, standin.url)
    home.use_example("sort-inbox.yaml")
    return home


def _by_name(runs):
    return {r["input"].rsplit("/", 1)[-1]: r for r in runs if r["input"]}


def test_three_kinds_are_filed_summarised_and_recorded(home):
    home.drop("invoice.txt", INVOICE)
    home.drop("receipt.md", RECEIPT)
    home.drop("letter.txt", LETTER)

    result = home.cli("run", "--once")

    assert result.returncode == 0, result.stderr
    assert "3 succeeded" in result.stdout
    assert sorted(p.name for p in home.inbox.iterdir()) == []
    assert (home.docs / "Invoices" / "invoice.txt").read_text() == INVOICE
    assert (home.docs / "Receipts" / "receipt.md").read_text() == RECEIPT
    assert (home.docs / "Letters" / "letter.txt").read_text() == LETTER
    summary = (home.docs / "Summaries" / "invoice.md").read_text()
    assert summary.startswith("# invoice.txt (invoice)\n")
    assert "INVOICE No. 2026-117" in summary
    assert f"Filed at {home.docs / 'Invoices' / 'invoice.txt'}." in summary

    runs = _by_name(home.runs())
    assert {name: r["status"] for name, r in runs.items()} == {
        "invoice.txt": "succeeded",
        "receipt.md": "succeeded",
        "letter.txt": "succeeded",
    }
    invoice = runs["invoice.txt"]
    assert invoice["input"] == str(home.inbox / "invoice.txt")
    assert invoice["attempts"] == 1 and invoice["error"] is None and invoice["finished_at"]
    assert invoice["outputs"]["kind"] == {"label": "invoice", "confidence": 0.9}
    assert invoice["outputs"]["filed"]["action"] == "move_to"
    assert invoice["outputs"]["filed"]["destination"] == str(home.docs / "Invoices" / "invoice.txt")
    assert invoice["outputs"]["summary"]["text"].startswith("INVOICE No. 2026-117")
    assert runs["receipt.md"]["outputs"]["kind"]["label"] == "receipt"


def test_every_model_call_is_recorded(home):
    home.drop("invoice.txt", INVOICE)
    home.cli("run", "--once", check=True)
    run_id = home.runs()[0]["id"]

    shown = json.loads(home.cli("show", str(run_id), "--json", check=True).stdout)

    calls = shown["calls"]
    assert [c["step"] for c in calls] == ["summary", "kind"]
    classify = calls[1]
    assert classify["model"] == "llama3.2"
    assert classify["format"]["properties"]["label"]["enum"] == ["invoice", "receipt", "letter"]
    assert "INVOICE No. 2026-117" in classify["messages"][-1]["content"]
    assert json.loads(classify["answer"])["label"] == "invoice"
    assert classify["prompt_tokens"] > 0 and classify["completion_tokens"] > 0
    assert classify["total_duration_ns"] > 0 and classify["eval_duration_ns"] > 0
    assert classify["wall_ms"] > 0


def test_same_content_runs_once(home):
    home.drop("invoice.txt", INVOICE)
    home.cli("run", "--once", check=True)
    home.drop("invoice copy.txt", INVOICE)

    again = home.cli("run", "--once")
    rerun = home.cli("run", "--once")

    assert again.returncode == 0 and rerun.returncode == 0, again.stderr + rerun.stderr
    runs = _by_name(home.runs())
    assert len(runs) == 2
    original, copy = runs["invoice.txt"], runs["invoice copy.txt"]
    assert copy["status"] == "skipped"
    assert copy["error"] == f"duplicate of run {original['id']} (same content)"
    assert (home.inbox / "invoice copy.txt").read_text() == INVOICE  # skipped files stay put
    assert len(list((home.docs / "Invoices").iterdir())) == 1


def test_model_server_down_keeps_runs_queued_then_they_succeed(tmp_path):
    port = free_port()
    home = make_home(tmp_path, f"http://127.0.0.1:{port}")
    home.use_example("sort-inbox.yaml")
    home.drop("invoice.txt", INVOICE)
    home.drop("letter.txt", LETTER)

    down = home.cli("run", "--once")

    assert down.returncode == 1
    assert "2 runs are still queued because the model server" in down.stderr
    assert "unreachable" in down.stderr
    runs = home.runs()
    assert [(r["status"], r["attempts"]) for r in runs] == [("queued", 0), ("queued", 0)]
    assert sorted(p.name for p in home.inbox.iterdir()) == ["invoice.txt", "letter.txt"]

    with StandinServer(port=port):
        up = home.cli("run", "--once")

    assert up.returncode == 0, up.stderr
    assert [(r["status"], r["attempts"]) for r in home.runs()] == [("succeeded", 1), ("succeeded", 1)]
    assert (home.docs / "Letters" / "letter.txt").exists()


def test_check_names_file_line_and_key_of_a_broken_workflow(home):
    broken = home.write_workflow(
        "broken.yaml",
        "name: broken\ntrigger:\n  watch: {path: ~/In}\nsteps:\n  - summarise: {max_wordz: 3}\n",
    )

    result = home.cli("check")

    assert result.returncode == 2
    assert f"{broken}, line 5, key 'steps[0].summarise.max_wordz'" in result.stdout
    assert "workflow sort-inbox: ok" in result.stdout


def test_check_reports_unreachable_server_and_missing_models(tmp_path, standin):
    home = make_home(tmp_path, f"http://127.0.0.1:{free_port()}")
    home.use_example("sort-inbox.yaml")
    unreachable = home.cli("check")
    assert unreachable.returncode == 1
    assert "unreachable" in unreachable.stdout and "ollama serve" in unreachable.stdout

    home.ollama_url = standin.url
    home.extra_env["GRISTMILL_MODEL"] = "qwen3:8b"
    missing = home.cli("check")
    assert missing.returncode == 1
    assert "model qwen3:8b is missing (used by sort-inbox); run: gristmill pull qwen3:8b" in missing.stdout


@pytest.mark.parametrize(
    ("quirk", "folder"),
    [
        ("fence", "Invoices"),
        ("think", "Invoices"),
        ("wrong_case", "Invoices"),
        ("garbage_once", "Invoices"),
        ("unknown_label", "Unsorted"),
        ("garbage", "Unsorted"),
    ],
)
def test_model_quirks_are_cleaned_or_take_the_default(home, quirk, folder):
    home.drop("doc.txt", f"{INVOICE}\n[[standin:{quirk}]]\n")

    result = home.cli("run", "--once")

    assert result.returncode == 0, result.stderr
    assert (home.docs / folder / "doc.txt").exists()
    run = home.runs()[0]
    assert run["status"] == "succeeded"
    summary = run["outputs"]["summary"]["text"]
    assert "<think>" not in summary and "```" not in summary
    if folder == "Unsorted":
        assert run["outputs"]["kind"]["label"] is None
        assert run["outputs"]["filed"]["why"].startswith("default: ")


def test_trigger_dry_run_moves_and_writes_nothing(home):
    doc = home.drop("letter.txt", LETTER)

    result = home.cli("trigger", "sort-inbox", str(doc), "--dry-run", "--json")

    assert result.returncode == 0, result.stderr
    run = json.loads(result.stdout)
    assert run["status"] == "succeeded"
    assert run["outputs"]["filed"]["destination"] == str(home.docs / "Letters" / "letter.txt")
    assert doc.read_text() == LETTER
    assert not home.docs.exists()


def test_retry_of_a_succeeded_run_is_refused_and_its_record_kept(home):
    home.drop("letter.txt", LETTER)
    home.cli("run", "--once", check=True)
    (before,) = home.runs()

    retried = home.cli("retry", str(before["id"]))

    assert retried.returncode == 2 and "Traceback" not in retried.stderr
    filed = home.docs / "Letters" / "letter.txt"
    assert retried.stderr.strip() == (
        f"gristmill: run {before['id']} succeeded, and retry never overwrites a finished record; "
        f"to run sort-inbox again: gristmill trigger sort-inbox {filed}"
    )
    assert home.runs() == [before]
    assert home.cli("retry").returncode == 2


def test_unknown_run_is_a_usage_error(home):
    result = home.cli("show", "999")
    assert result.returncode == 2
    assert "no run with id 999" in result.stderr
    assert "Traceback" not in result.stderr

"""Data stays home: owner-only files, `record: metadata`, the review queue, `check`, remote refusal."""

from __future__ import annotations

import hashlib
import json
import stat

import pytest

from daemon.errors import UsageError
from daemon.settings import Settings
from tests.support import INVOICE, LETTER, make_home

WORKFLOW = """\
name: private
trigger: {{watch: {{path: ~/Inbox, settle_seconds: 0}}}}
record: {record}
steps:
  - id: summary
    summarise: {{max_words: 20}}
{extract}  - id: kind
    classify:
      labels: {{invoice: A bill, receipt: Proof of payment, letter: Correspondence}}
      min_confidence: 0.5
  - id: filed
    route:
      by: kind
      routes: {{invoice: {{move_to: ~/Documents/Invoices}}}}
{review}      default: {{move_to: ~/Documents/Unsorted}}
"""


def _workflow(record: str = "full", review: bool = True, extract: bool = True) -> str:
    line = "      review: {move_to: ~/Documents/Review}\n" if review else ""
    fields = "  - id: fields\n    extract: {fields: {vendor: string, total: number}}\n" if extract else ""
    return WORKFLOW.format(record=record, review=line, extract=fields)


@pytest.fixture
def home(tmp_path, standin):
    home = make_home(tmp_path, standin.url)
    home.extra_env["GRISTMILL_MAX_ATTEMPTS"] = "1"
    return home


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_and_data_folder_are_owner_only(home):
    home.write_workflow("private.yaml", _workflow())
    home.drop("invoice.txt", INVOICE)

    home.cli("run", "--once", check=True)

    assert _mode(home.data) == 0o700
    files = [p for p in home.data.iterdir() if p.name.startswith("gristmill.db")]
    assert files and all(_mode(p) == 0o600 for p in files), {p.name: oct(_mode(p)) for p in files}


def test_metadata_records_hashes_and_sizes_instead_of_document_text(home):
    home.write_workflow("private.yaml", _workflow("metadata"))
    home.drop("invoice.txt", INVOICE)

    home.cli("run", "--once", check=True)

    run = home.runs()[0]
    shown = json.loads(home.cli("show", str(run["id"]), "--json", check=True).stdout)
    everything = json.dumps(shown) + (home.data / "gristmill.db").read_bytes().decode("latin-1")
    for secret in ("ACME Tools", "1,234.50", "1234.5", "Please pay this invoice"):
        assert secret not in everything, secret
    summary = run["outputs"]["summary"]["text"]
    assert set(summary) == {"sha256", "chars"} and len(summary["sha256"]) == 64
    assert set(run["outputs"]["fields"]["vendor"]) == {"sha256", "chars"}
    assert run["outputs"]["kind"] == {"label": "invoice", "confidence": 0.9}
    assert run["outputs"]["filed"]["destination"] == str(home.docs / "Invoices" / "invoice.txt")
    user = shown["calls"][0]["messages"][-1]
    assert user["role"] == "user" and user["content"]["chars"] > len(INVOICE)
    answer = json.loads(shown["calls"][0]["answer"])
    assert answer["chars"] > 0 and shown["calls"][0]["prompt_tokens"] > 0
    # The file was still filed and summarised as usual: only the record is thinner.
    assert (home.docs / "Invoices" / "invoice.txt").read_text() == INVOICE


def test_a_digest_matches_the_text_it_stands_for(home):
    home.write_workflow("private.yaml", _workflow("full"))
    other = _workflow("metadata").replace("name: private", "name: metadata").replace("~/Inbox", "~/Inbox2")
    home.write_workflow("metadata.yaml", other)
    home.drop("invoice.txt", INVOICE)
    home.drop("invoice.txt", INVOICE, folder=home.root / "Inbox2")

    home.cli("run", "--once", check=True)

    runs = {r["workflow"]: r for r in home.runs() if r["status"] == "succeeded"}
    full, meta = runs["private"]["outputs"]["summary"]["text"], runs["metadata"]["outputs"]["summary"]["text"]
    assert meta == {"sha256": hashlib.sha256(full.encode()).hexdigest(), "chars": len(full)}


@pytest.mark.parametrize(
    ("document", "why"),
    [
        (LETTER.replace("letter", "note"), "below 0.5"),  # no label word: confidence 0.2
        (INVOICE + "\n[[standin:unknown_label]]", "not one of"),
        (INVOICE + "\n[[standin:garbage]]", "not a JSON object"),
    ],
)
def test_unsure_or_invalid_answers_go_to_review_with_why(home, document, why):
    home.write_workflow("private.yaml", _workflow(extract=False))
    home.drop("doc.txt", document)

    home.cli("run", "--once", check=True)

    filed = home.runs()[0]["outputs"]["filed"]
    assert filed["destination"] == str(home.docs / "Review" / "doc.txt")
    assert filed["why"].startswith("review: ") and why in filed["why"]


def test_without_review_they_take_the_default(home):
    home.write_workflow("private.yaml", _workflow(review=False))
    home.drop("doc.txt", INVOICE + "\n[[standin:unknown_label]]")

    home.cli("run", "--once", check=True)

    filed = home.runs()[0]["outputs"]["filed"]
    assert filed["destination"] == str(home.docs / "Unsorted" / "doc.txt")
    assert filed["why"].startswith("default: ") and "not one of" in filed["why"]


def test_check_states_where_model_and_webhook_traffic_goes(home, standin):
    home.write_workflow("private.yaml", _workflow())
    home.write_workflow(
        "hooks.yaml",
        """\
name: hooks
trigger: {watch: {path: ~/Inbox}}
steps:
  - summarise: {}
  - route: {default: {webhook: "http://203.0.113.5/hook"}}
""",
    )

    result = home.cli("check")

    assert f"model traffic goes to {standin.url}, on this machine or the local network" in result.stdout
    assert "the webhook of workflow 'hooks' http://203.0.113.5/hook is not on this machine" in result.stdout
    assert "allow_remote_webhooks: true in " in result.stdout and result.returncode == 2

    home.write_workflow("hooks.yaml", (home.workflows / "hooks.yaml").read_text() + "allow_remote_webhooks: true\n")
    allowed = home.cli("check")
    assert "warning: workflow hooks: webhook traffic goes to http://203.0.113.5/hook, a remote server" in allowed.stdout


def test_a_remote_model_server_is_refused_at_start(home, tmp_path):
    # No workflow and no file: even a broken guard would have nothing to send anywhere.
    home.extra_env["GRISTMILL_OLLAMA_URL"] = "http://203.0.113.5:11434"

    result = home.cli("run", "--once")

    assert result.returncode == 2
    refused = "the model server 'local' at http://203.0.113.5:11434 is not on this machine or a private network"
    assert refused in result.stderr
    assert "GRISTMILL_ALLOW_REMOTE_MODEL=true" in result.stderr and "Traceback" not in result.stderr


def test_the_app_refuses_a_remote_model_before_building_a_client(tmp_path):
    from daemon.app import App

    settings = Settings(data_dir=tmp_path / "data", workflows=tmp_path, ollama_url="http://203.0.113.5:11434")
    with pytest.raises(UsageError, match="not on this machine or a private network"):
        App(settings)

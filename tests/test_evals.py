"""`gristmill eval`, `correct --refile` and `export` over 24 runs the real daemon recorded against the stand-in.

The stand-in's `twin` answers exactly like the recorded model; its `weakling` errs exactly on the
documents marked hard (tests/eval_support.py), so every disagreement is known in advance. The
tests run in file order on one history: the refile's correction is the reference of later evals.
"""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from daemon.export.chat import shape_problem
from daemon.metrics import Metrics
from daemon.settings import load_settings
from daemon.standin import StandinConfig, StandinServer
from daemon.store import RunStore, make_engine
from daemon.web.app import build_app
from daemon.web.source import DatabaseSource
from tests.chat_format import check_folder
from tests.eval_support import COUNT, FOLDERS, TWIN, WEAK, WORKFLOW, drop_all, eval_json, is_hard, kind_of, run_ids
from tests.support import make_home

LABELED_STEPS = {"kind": "classify", "fields": "extract"}


@pytest.fixture(scope="module")
def standin():
    server = StandinServer(StandinConfig(models=["llama3.2", TWIN], weak=[WEAK])).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def home(tmp_path_factory, standin):
    home = make_home(tmp_path_factory.mktemp("evals"), standin.url)
    home.write_workflow("mail-room.yaml", WORKFLOW)
    drop_all(home)
    home.cli("run", "--once", check=True)
    runs = home.runs()
    assert len(runs) == COUNT and {r["status"] for r in runs} == {"succeeded"}
    return home


def test_a_model_that_answers_identically_agrees_on_all_24(home, standin):
    before = len(standin.recorded())
    result = eval_json(home, "--model", TWIN)
    assert result["workflow"] == "mail-room" and result["model"] == TWIN and isinstance(result["eval"], int)
    for step_id, kind in LABELED_STEPS.items():
        figures = result["steps"][step_id]
        assert (figures["kind"], figures["compared"], figures["agreed"]) == (kind, COUNT, COUNT)
        assert figures["agreement"] == 1.0 and figures["invalid"] == 0 and figures["disagreements"] == []
        assert figures["latency"]["candidate"]["p50_ms"] is not None
        assert figures["latency"]["reference"]["p50_ms"] is not None
    assert set(result["steps"]) == set(LABELED_STEPS)  # summaries and routes are not compared
    asked = [r["body"]["model"] for r in standin.recorded()[before:]]
    assert asked == [TWIN] * (2 * COUNT)  # one question per step and run, nothing recorded as a run's call
    assert all(len(home.cli("show", str(r["id"]), "--json", check=True).stdout) for r in home.runs()[:1])


def test_the_weaker_model_disagrees_exactly_on_the_hard_documents(home):
    ids = run_ids(home)
    hard = sorted(ids[i] for i in range(COUNT) if is_hard(i))
    result = eval_json(home, "--model", WEAK)
    kind, fields = result["steps"]["kind"], result["steps"]["fields"]
    assert kind["disagreements"] == hard and fields["disagreements"] == hard
    assert kind["agreed"] == COUNT - len(hard) and kind["agreement"] == round((COUNT - len(hard)) / COUNT, 4)
    assert fields["fields"]["vendor"]["agreed"] == COUNT - len(hard)  # the weak model changes the first field
    assert fields["fields"]["total"]["agreement"] == 1.0
    # Precision and recall per label: every hard document's label is answered as another one.
    for label in ("invoice", "receipt", "letter"):
        missed = sum(1 for i in range(COUNT) if is_hard(i) and kind_of(i) == label)
        assert kind["labels"][label]["reference"] == COUNT // 3
        assert kind["labels"][label]["recall"] == round((COUNT // 3 - missed) / (COUNT // 3), 4)
    shown = json.loads(home.cli("eval", "--show", str(result["eval"]), "--json", check=True).stdout)
    assert shown == result
    listed = json.loads(home.cli("eval", "--list", "--json", check=True).stdout)
    assert [e["eval"] for e in listed][:1] == [result["eval"]] and listed[0]["model"] == WEAK
    text = home.cli("eval", "--show", str(result["eval"]), check=True).stdout
    assert "18 of 24 agree" in text and "disagreements: runs " + ", ".join(map(str, hard)) in text


def test_a_refiled_correction_moves_the_file_and_is_the_reference_next_time(home):
    ids = run_ids(home)
    i = next(i for i in range(COUNT) if kind_of(i) == "receipt" and not is_hard(i))
    name, run = f"doc-{i:02d}.txt", ids[i]
    assert (home.docs / "Receipts" / name).exists()
    done = home.cli("correct", str(run), "--step", "kind", "--label", "invoice", "--refile", check=True)
    assert f"moved {home.docs / 'Receipts' / name} to {home.docs / 'Invoices' / name}" in done.stdout
    assert not (home.docs / "Receipts" / name).exists() and (home.docs / "Invoices" / name).exists()
    (correction,) = json.loads(home.cli("show", str(run), "--json", check=True).stdout)["corrections"]
    assert correction["refile"]["filed"]["destination"] == str(home.docs / "Invoices" / name)
    assert correction["refile"]["filed"]["from"] == str(home.docs / "Receipts" / name)

    again = home.cli("correct", str(run), "--step", "kind", "--label", "invoice", "--refile", check=True)
    assert "moved" not in again.stdout  # nothing left to do; still one correction, one file
    assert len(json.loads(home.cli("show", str(run), "--json", check=True).stdout)["corrections"]) == 1

    result = eval_json(home, "--model", TWIN)
    kind = result["steps"]["kind"]
    assert kind["disagreements"] == [run] and kind["corrected_references"] == 1
    assert kind["differences"] == [{"run": run, "reference": "invoice", "answer": "receipt"}]
    assert result["steps"]["fields"]["disagreements"] == []


def test_the_export_carries_the_corrected_label(home, tmp_path):
    ids = run_ids(home)
    corrected = ids[next(i for i in range(COUNT) if kind_of(i) == "receipt" and not is_hard(i))]
    out = tmp_path / "training"
    done = json.loads(home.cli("export", "mail-room", "--out", str(out), "--json", check=True).stdout)
    assert done["runs"] == COUNT and done["train"] + done["valid"] == 2 * COUNT and done["corrected"] == 1
    lines = {name: (out / name).read_text().splitlines() for name in ("train.jsonl", "valid.jsonl")}
    assert lines["valid.jsonl"] and len(lines["valid.jsonl"]) == done["valid"]
    examples = [json.loads(text) for texts in lines.values() for text in texts]
    assert all(shape_problem(e["messages"]) is None for e in examples)
    assert check_folder(out) == 2 * COUNT  # as mlx-lm and TRL read it (tests/chat_format.py)
    labels = [json.loads(e["messages"][-1]["content"]) for e in examples if '"label"' in e["messages"][-1]["content"]]
    assert len(labels) == COUNT
    answered = {
        e["messages"][1]["content"].split("<document>\n")[1].split()[2]: json.loads(e["messages"][-1]["content"])
        for e in examples if '"label"' in e["messages"][-1]["content"]
    }  # fmt: skip  # document number → its classify answer
    receipt = next(i for i in range(COUNT) if ids[i] == corrected)
    assert answered[str(receipt)] == {"label": "invoice", "confidence": 1.0}
    assert sum(a["label"] == "invoice" for a in answered.values()) == COUNT // 3 + 1
    readme = (out / "README.md").read_text()
    assert "FROM ./model.gguf" in readme and "ollama create mail-room-tuned -f Modelfile" in readme
    assert "model: mail-room-tuned" in readme

    # The split is by run and the same every time.
    home.cli("export", "mail-room", "--out", str(tmp_path / "again"), check=True)
    assert (tmp_path / "again" / "valid.jsonl").read_text() == (out / "valid.jsonl").read_text()
    only = json.loads(
        home.cli(
            "export", "mail-room", "--out", str(tmp_path / "c"), "--only", "corrected", "--json", check=True
        ).stdout
    )
    assert only["train"] + only["valid"] == 1 and only["left_out"]["not corrected (--only corrected)"] == 2 * COUNT - 1


def test_the_dashboard_lists_the_evals_and_shows_one(home, monkeypatch):
    monkeypatch.setenv("GRISTMILL_DATA_DIR", str(home.data))
    monkeypatch.setenv("GRISTMILL_WORKFLOWS", str(home.workflows))
    settings = load_settings()
    engine = make_engine(settings.db_url)
    try:
        source = DatabaseSource(settings, RunStore(engine), probe=lambda url: None)
        app = build_app(source, Metrics(queue_depth=dict, servers_up=dict), token=None, host="127.0.0.1")
        client = TestClient(app, base_url="http://127.0.0.1:8377")
        listing = client.get("/evals")
        assert listing.status_code == 200 and "script-src" not in listing.text
        listed = json.loads(home.cli("eval", "--list", "--json", check=True).stdout)
        weak = next(e for e in listed if e["model"] == WEAK)
        assert f'href="/evals/{weak["eval"]}"' in listing.text
        page = client.get(f"/evals/{weak['eval']}")
        assert page.status_code == 200 and page.headers["content-security-policy"].startswith("default-src 'self'")
        assert "<script>" not in page.text.split("</head>")[1]  # no inline script in the body
        assert "18 of 24</strong> agree (75.0 %)" in page.text
        for run in weak["steps"]["kind"]["disagreements"]:
            assert f'href="/runs/{run}"' in page.text
        assert "vendor" in page.text and "Vendor 1 (weak)" in page.text  # the differing field, both values
        assert client.get("/evals/99999").status_code == 404
    finally:
        engine.dispose()


def test_mistakes_are_one_sentence(home):
    for args, words in [
        (["eval", "mail-room"], "give the candidate"),
        (["eval", "nope", "--model", TWIN], "no workflow named 'nope'"),
        (["eval", "--show", "999"], "no eval with id 999"),
        (["eval", "mail-room", "--shadow"], "has no shadow answers yet"),
        (["eval"], "give WORKFLOW --model CANDIDATE"),
        (["export", "mail-room", "--out", str(home.root / "x"), "--step", "filed"], "asks no model"),
        (["export", "mail-room", "--out", str(home.root / "x"), "--valid", "1.5"], "must be at least 0"),
        (["correct", "1", "--step", "fields", "--set", "vendor=X", "--refile"], "no step of workflow 'mail-room' acts"),
    ]:
        result = home.cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert words in result.stderr and "Traceback" not in result.stderr
    missing = home.cli("eval", "mail-room", "--model", "ghost")
    assert missing.returncode == 1 and "model 'ghost' is not on the server" in missing.stderr


def test_the_files_are_where_their_labels_say(home):
    """Every file sits in its (possibly corrected) label's folder, once."""
    files = sorted(p.relative_to(home.docs) for p in home.docs.rglob("*.txt"))
    assert len(files) == COUNT
    assert {str(p.parent) for p in files} <= set(FOLDERS.values())
    assert len({p.name for p in files}) == COUNT

"""The engine uses what the documents and answers layers offer: token estimates calibrated from the
server's prompt_eval_count, scanned PDF pages read by the workflow's vision model, and `prompt`
answers checked against their whole JSON schema."""

from __future__ import annotations

import json

import pytest

from daemon.app import App
from daemon.domain import RunStatus
from daemon.settings import Settings
from daemon.standin.brain import count_tokens, prompt_text
from tests import docs_support as docs
from tests.support import make_home
from tests.test_long_inputs import NUM_CTX, _long_document

LONG = f"""name: long
options: {{num_ctx: {NUM_CTX}}}
trigger: {{watch: {{path: ~/Inbox}}}}
steps:
  - id: summary
    summarise: {{max_words: 40}}
"""


def test_the_planner_learns_the_models_tokens_and_cuts_later_documents_into_fewer_pieces(tmp_path, standin):
    home = make_home(tmp_path, standin.url)
    home.write_workflow("long.yaml", LONG)
    app = App(Settings(data_dir=home.data, workflows=home.workflows, ollama_url=standin.url))
    try:
        first = app.trigger("long", home.drop("first.txt", _long_document()))
        second = app.trigger("long", home.drop("second.txt", _long_document().replace("fact", "item")))
    finally:
        app.close()

    before, after = first.outputs["summary"]["split"], second.outputs["summary"]["split"]
    assert first.status is second.status is RunStatus.SUCCEEDED
    assert "token_ratio" not in before  # nothing learnt yet when the first document was cut
    assert 0.7 <= after["token_ratio"] < 1.0  # the stand-in counts fewer tokens than the estimate
    assert after["chunks"] < before["chunks"]
    for request in standin.recorded():  # and every prompt still fit the context it was sent with
        if request["path"] == "/api/chat":
            assert count_tokens(prompt_text(request["body"]["messages"])) < NUM_CTX


SCANS = """name: scans
model: llama3.2
{vision}trigger: {{watch: {{path: ~/Inbox}}}}
steps:
  - id: summary
    summarise: {{max_words: 60}}
"""


@pytest.fixture
def home(tmp_path, standin):
    standin.config.update({"vision": ["llama3.2-vision"]})
    return make_home(tmp_path, standin.url)


def test_scanned_pages_are_read_by_the_vision_model_and_the_run_says_which(home, standin):
    home.write_workflow("scans.yaml", SCANS.format(vision="vision_model: llama3.2-vision\n"))
    (home.inbox / "letter.pdf").write_bytes(docs.scanned_pdf(["Cover letter from ACME", None]))

    home.cli("run", "--once", check=True)

    (run,) = home.runs()
    assert run["status"] == "succeeded", run["error"]
    assert run["outputs"]["_input"] == {"scanned_pages": [2], "read_by": "llama3.2-vision"}
    calls = json.loads(home.cli("show", str(run["id"]), "--json", check=True).stdout)["calls"]
    (ocr,) = [c for c in calls if c["step"] == "_input"]
    assert ocr["model"] == "llama3.2-vision" and "page 2 of a scanned document" in ocr["messages"][-1]["content"]
    assert set(ocr["messages"][-1]["images"][0]) == {"image", "bytes"}  # a digest, never the image
    (summary,) = [c for c in calls if c["step"] == "summary"]
    assert summary["model"] == "llama3.2"  # the document is text now: the workflow's own model reads it
    sent = summary["messages"][-1]["content"]
    assert "Cover letter from ACME" in sent and "[page 2, read from its image]" in sent
    shown = home.cli("show", str(run["id"]), check=True).stdout
    assert "input: page 2 read by llama3.2-vision" in shown


def test_the_workflows_own_model_reads_scans_when_it_can_see(home, standin):
    home.write_workflow("scans.yaml", SCANS.format(vision="").replace("model: llama3.2", "model: llama3.2-vision"))
    (home.inbox / "scan.pdf").write_bytes(docs.scanned_pdf([None]))

    home.cli("run", "--once", check=True)

    (run,) = home.runs()
    assert run["outputs"]["_input"] == {"scanned_pages": [1], "read_by": "llama3.2-vision"}


def test_without_a_vision_model_a_scan_is_skipped_as_before(home, standin):
    home.write_workflow("scans.yaml", SCANS.format(vision=""))
    (home.inbox / "scan.pdf").write_bytes(docs.scanned_pdf([None, None]))

    home.cli("run", "--once", check=True)

    (run,) = home.runs()
    assert run["status"] == "skipped"
    assert run["error"] == (
        "scan.pdf has no text layer (2 pages, a scan?); nothing to send to the model (set `vision_model:` in "
        "workflow 'scans' to a vision model, e.g. llama3.2-vision, to have its pages read)"
    )
    assert not [r for r in standin.recorded() if r["path"] == "/api/chat"]


def test_without_a_vision_model_a_mixed_pdf_is_read_from_its_text_and_says_which_pages_were_not(home, standin):
    home.write_workflow("scans.yaml", SCANS.format(vision=""))
    (home.inbox / "letter.pdf").write_bytes(docs.scanned_pdf(["Cover letter from ACME", None]))

    home.cli("run", "--once", check=True)

    (run,) = home.runs()
    assert run["status"] == "succeeded"
    assert run["outputs"]["_input"] == {"scanned_pages_unread": [2]}


def test_a_vision_model_that_cannot_see_is_named(home, standin):
    home.write_workflow("scans.yaml", SCANS.format(vision="vision_model: llama3.2\n"))
    (home.inbox / "scan.pdf").write_bytes(docs.scanned_pdf([None]))

    home.cli("run", "--once")

    (run,) = home.runs()
    assert run["status"] == "skipped"
    assert run["error"] == (
        "scan.pdf has pages without a text layer and model 'llama3.2' cannot read images (it lacks the vision "
        "capability); set `vision_model:` in workflow 'scans' to a vision model, e.g. llama3.2-vision or gemma3"
    )


PROMPT = """name: codes
trigger: {watch: {path: ~/Inbox}}
steps:
  - id: order
    prompt:
      instruction: Find the order code and the customer.
      schema:
        type: object
        properties:
          code: {type: string, pattern: "^[A-Z]{3}-[0-9]+$"}
          customer:
            type: object
            properties: {name: {type: string}, city: {type: string}}
            required: [name, city]
        required: [code, customer]
"""


def test_prompt_answers_are_checked_against_the_whole_schema_with_one_reask(tmp_path, standin):
    home = make_home(tmp_path, standin.url)
    home.extra_env["GRISTMILL_MAX_ATTEMPTS"] = "1"
    home.write_workflow("codes.yaml", PROMPT)
    home.drop("good.txt", "Code: ABC-12\nName: Anna\nCity: Berlin\n")
    home.drop("bad.txt", "Code: abc\nName: Ben\nCity: Bonn\n")

    home.cli("run", "--once")

    runs = {r["input"].rsplit("/", 1)[-1]: r for r in home.runs()}
    assert runs["good.txt"]["status"] == "succeeded", runs["good.txt"]["error"]
    assert runs["good.txt"]["outputs"]["order"] == {"code": "ABC-12", "customer": {"name": "Anna", "city": "Berlin"}}
    bad = runs["bad.txt"]
    assert bad["status"] == "failed"
    assert "the answer does not match the schema at code: " in bad["error"] and "does not match '^[A-Z]" in bad["error"]
    calls = json.loads(home.cli("show", str(bad["id"]), "--json", check=True).stdout)["calls"]
    assert len(calls) == 2 and "does not match the schema at code" in calls[1]["messages"][-1]["content"]

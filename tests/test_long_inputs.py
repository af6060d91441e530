"""Long inputs: map-reduce summaries within the configured context, every call recorded."""

from __future__ import annotations

import json

import pytest

from daemon.engine.chunking import estimate_tokens, split_text
from daemon.standin.brain import count_tokens, prompt_text
from tests.support import make_home

NUM_CTX = 1024
WORKFLOW = f"""
name: digest-long
model: llama3.2
options: {{num_ctx: {NUM_CTX}}}
trigger: {{watch: {{path: ~/Inbox}}}}
steps:
  - id: summary
    summarise: {{max_words: 40}}
  - id: kind
    classify:
      labels: {{report: A report, letter: A letter}}
"""


def _long_document(paragraphs: int = 60) -> str:
    return "\n\n".join(
        f"Paragraph {i} of the annual report. " + " ".join(f"fact{i}-{j}" for j in range(60))
        for i in range(paragraphs)
    )


def test_split_pieces_fit_and_keep_every_word():
    text = _long_document(20)
    pieces = split_text(text, 300)
    assert len(pieces) > 1 and all(estimate_tokens(p) <= 300 for p in pieces)
    assert " ".join(" ".join(pieces).split()) == " ".join(text.split())


def test_estimate_is_never_below_the_standins_count():
    for text in ("one two three", "a" * 999, _long_document(3)):
        assert estimate_tokens(text) >= count_tokens(text)


@pytest.fixture
def home(tmp_path, standin):
    home = make_home(tmp_path, standin.url)
    home.write_workflow("digest-long.yaml", WORKFLOW)
    return home


def test_long_document_summary_takes_several_calls_each_within_context(home, standin):
    document = _long_document()
    assert count_tokens(document) > 4 * NUM_CTX
    home.drop("annual.txt", document)

    home.cli("run", "--once", check=True)

    run = home.runs()[0]
    assert run["status"] == "succeeded", run["error"]
    split = run["outputs"]["summary"]["split"]
    assert split["strategy"] == "map-reduce" and split["chunks"] >= 5 and split["num_ctx"] == NUM_CTX
    assert run["outputs"]["kind"]["split"]["strategy"] == "beginning+summary"
    chats = [r["body"] for r in standin.recorded() if r["path"] == "/api/chat"]
    assert len(chats) >= split["calls"] + 2
    for body in chats:  # every prompt fit: the stand-in would have cut it silently otherwise
        assert body["options"]["num_ctx"] == NUM_CTX
        assert count_tokens(prompt_text(body["messages"])) < NUM_CTX
    calls = json.loads(home.cli("show", str(run["id"]), "--json", check=True).stdout)["calls"]
    assert len(calls) == len(chats)
    assert all(0 < c["prompt_tokens"] < NUM_CTX for c in calls)
    assert {c["step"] for c in calls} == {"summary", "kind"}
    kind_bodies = [b for b in chats if b.get("format")]
    assert kind_bodies and all(b.get("think") is False for b in kind_bodies)

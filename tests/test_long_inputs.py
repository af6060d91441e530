"""Long inputs: map-reduce summaries within the configured context, every call recorded."""

from __future__ import annotations

import json

import pytest

from daemon.domain import ModelCall
from daemon.engine.chunking import estimate_tokens, split_text
from daemon.engine.longinput import summary_of
from daemon.llm.ask import Asker
from daemon.llm.base import ModelBackend, ModelInfo
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
  - id: fields
    extract:
      fields: {{split: Any field name a user may choose, year: number}}
"""


def _long_document(paragraphs: int = 60) -> str:
    return "\n\n".join(
        f"Paragraph {i} of the annual report. " + " ".join(f"fact{i}-{j}" for j in range(60)) for i in range(paragraphs)
    )


def _short_words(count: int) -> str:
    """Text whose conservative estimate is close to the stand-in's count (short words)."""
    words = ["cat", "dog", "sun", "sea", "map", "pen", "cup", "hat"]
    return "\n\n".join(" ".join(words[(i + j) % len(words)] for j in range(50)) for i in range(0, count, 50))


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
    document = _short_words(3600)
    assert count_tokens(document) > 4 * NUM_CTX
    # The judge below is the stand-in's own count, which silently cuts what is over num_ctx. On this text
    # gristmill's estimate is within 2 % of that count, so a plan that overshoots its budget shows.
    assert estimate_tokens(document) <= count_tokens(document) * 1.02
    home.drop("annual.txt", document)

    home.cli("run", "--once", check=True)

    run = home.runs()[0]
    assert run["status"] == "succeeded", run["error"]
    split = run["outputs"]["summary"]["split"]
    assert split["strategy"] == "map-reduce" and split["chunks"] >= 5 and split["num_ctx"] == NUM_CTX
    assert run["outputs"]["kind"]["split"]["strategy"] == "beginning+summary"
    # extract's output is the user's fields (and _text, how each number was written); the split is beside them
    assert set(run["outputs"]["fields"]) - {"_text"} == {"split", "year"}
    assert run["outputs"]["_split"]["fields"]["strategy"] == "beginning+summary"
    assert run["outputs"]["_split"]["fields"]["num_ctx"] == NUM_CTX
    assert run["outputs"]["_split"]["summary"] == split
    chats = [r["body"] for r in standin.recorded() if r["path"] == "/api/chat"]
    assert len(chats) >= split["calls"] + 2
    for body in chats:  # every prompt fit, by the stand-in's count: it would have cut it silently otherwise
        assert body["options"]["num_ctx"] == NUM_CTX
        assert count_tokens(prompt_text(body["messages"])) < NUM_CTX
    calls = json.loads(home.cli("show", str(run["id"]), "--json", check=True).stdout)["calls"]
    assert len(calls) == len(chats)
    assert all(0 < c["prompt_tokens"] < NUM_CTX for c in calls)  # the tokens the stand-in read: none was cut
    assert {c["step"] for c in calls} == {"summary", "kind", "fields"}
    kind_bodies = [b for b in chats if b.get("format")]
    assert kind_bodies and all("think" not in b for b in kind_bodies)  # llama3.2 here cannot think


CUT_CTX = 1000
CUT_WORKFLOW = """
name: cut
model: llama3.2
trigger: {watch: {path: ~/Inbox}}
steps:
  - id: summary
    summarise: {max_words: 40}
"""


class TokenHungry(ModelBackend):
    """A server whose tokenizer counts twice the stand-in's tokens: more than gristmill's estimate.

    Like Ollama, it keeps the last num_ctx tokens of a longer prompt and reports num_ctx as evaluated.
    The stand-in never does this (the estimate is never below its count), so this fake stands in for it.
    """

    url = "fake://hungry"

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def chat(self, call: ModelCall, *, think=None) -> ModelCall:
        self.sent.append(dict(call.options))
        call.prompt_tokens = min(2 * count_tokens(prompt_text(call.messages)), self.window(call.model, call.options))
        call.answer, call.done_reason = "a summary", "stop"
        return call

    def list_models(self) -> list[str]:
        return ["llama3.2"]

    def info(self, model: str) -> ModelInfo:
        return ModelInfo(model, 2048, frozenset({"completion"}))

    def window(self, model: str, options: dict) -> int:
        return int(options.get("num_ctx") or 2048)

    def version(self) -> str | None:
        return "fake"


def test_a_prompt_the_server_cut_is_caught_and_planned_again_smaller():
    backend, calls = TokenHungry(), []
    asker = Asker(backend=backend, record=calls.append, model="llama3.2", step_id="summary")
    document = _short_words(1000)
    assert estimate_tokens(document) < 2048 - 300 < 2048 < 2 * count_tokens(document)

    summary, split = summary_of(asker, document, (), 40, None)

    first, *again = calls
    assert first.prompt_tokens == 2048  # the cut call: it read its whole context, of more
    assert len(again) >= 3 and all(c.options["num_ctx"] == 2048 for c in again)
    assert all(c.prompt_tokens < 2048 for c in again)  # nothing cut the second time
    assert summary == "a summary"
    assert split["strategy"] == "map-reduce" and split["num_ctx"] == 2048


def test_a_cut_that_planning_cannot_avoid_fails_the_step_with_the_reason(tmp_path, standin):
    standin.config.update({"context_length": CUT_CTX})
    home = make_home(tmp_path, standin.url)
    home.extra_env["GRISTMILL_MAX_ATTEMPTS"] = "1"
    home.write_workflow("cut.yaml", CUT_WORKFLOW.replace("summarise: {max_words: 40}", "prompt: Say what this is."))
    home.drop("notes.txt", _short_words(1000))

    home.cli("run", "--once")

    (run,) = home.runs()
    assert run["status"] == "failed"
    assert f"the model server cut the prompt of step 'summary': it read {CUT_CTX} tokens" in run["error"]
    assert "set options.num_ctx in the workflow" in run["error"]

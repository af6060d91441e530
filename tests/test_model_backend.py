"""The Ollama backend and the asker against a model server: the stand-in, and a real Ollama if set.

These assertions hold for any competent model, so `GRISTMILL_TEST_OLLAMA_URL` can point them at a
real server (with `GRISTMILL_TEST_MODEL`, default llama3.2, pulled).
"""

from __future__ import annotations

import pytest

from daemon.domain import ModelCall
from daemon.engine.longinput import summary_request
from daemon.errors import ModelMissing
from daemon.llm.answers import check_fields, match_label
from daemon.llm.ask import Asker
from daemon.llm.ollama_backend import OllamaBackend
from daemon.steps import classify, extract
from daemon.steps.extract import ExtractSpec
from tests.support import INVOICE, LETTER

LABELS = {"invoice": "A bill that asks for payment", "letter": "Personal or business correspondence"}


@pytest.fixture
def backend(model_server):
    return OllamaBackend(model_server.url, timeout=300, connect_timeout=5)


@pytest.fixture
def calls() -> list[ModelCall]:
    return []


@pytest.fixture
def asker(model_server, backend, calls):
    return Asker(backend=backend, record=calls.append, model=model_server.model, options={"temperature": 0})


def test_the_server_lists_the_model_and_tells_its_context(backend, model_server):
    assert backend.has_model(model_server.model)
    info = backend.info(model_server.model)
    assert info.context_length and info.context_length >= 2048
    assert "completion" in info.capabilities


def test_a_summary_is_plain_text_and_every_call_is_recorded(asker, calls):
    text = asker.text(summary_request(LETTER, 30))

    assert text and "<think>" not in text and len(text.split()) <= 60
    (call,) = calls
    assert call.answer and call.prompt_tokens and call.prompt_tokens > 0
    assert call.completion_tokens and call.total_duration_ns and call.total_duration_ns > 0


@pytest.mark.parametrize(("document", "expected"), [(INVOICE, "invoice"), (LETTER, "letter")])
def test_classification_is_one_of_the_declared_labels(asker, calls, document, expected):
    labels = list(LABELS)

    def check(answer):
        return match_label(answer.get("label"), labels)

    label = asker.json(classify.request(document, LABELS), classify.schema(labels), check)

    assert label == expected
    assert calls[0].format["properties"]["label"]["enum"] == labels


def test_extraction_gives_typed_fields(asker):
    schema = ExtractSpec(fields={"total": "number", "due_date": "date"}).json_schema()

    fields = asker.json(extract.request(INVOICE, schema), schema, lambda obj: check_fields(obj, schema))

    assert fields["total"] == pytest.approx(1234.5)
    assert fields["due_date"] == "2026-12-15"


def test_a_missing_model_is_named_with_the_pull_command(backend):
    call = ModelCall(model="no-such-model-gristmill:latest", messages=[{"role": "user", "content": "hi"}])

    with pytest.raises(ModelMissing, match="ollama pull no-such-model-gristmill"):
        backend.chat(call)
    assert call.error and "no-such-model-gristmill" in call.error

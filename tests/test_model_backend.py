"""Each backend and the asker against a model server: the stand-in's Ollama and OpenAI APIs, and real servers if set.

These assertions hold for any competent model, so `GRISTMILL_TEST_OLLAMA_URL` (with
`GRISTMILL_TEST_MODEL`, default llama3.2, pulled) and `GRISTMILL_TEST_OPENAI_URL` (ending in /v1, with
`GRISTMILL_TEST_OPENAI_MODEL`) can point them at real servers.
"""

from __future__ import annotations

import pytest

from daemon.domain import ModelCall
from daemon.engine.longinput import summary_request
from daemon.errors import ModelMissing
from daemon.llm.answers import check_fields, match_label
from daemon.llm.ask import Asker
from daemon.plugins import registry
from daemon.settings import ServerConfig, Settings
from daemon.steps import classify, extract
from daemon.steps.extract import ExtractSpec
from tests.support import INVOICE, LETTER

LABELS = {"invoice": "A bill that asks for payment", "letter": "Personal or business correspondence"}


@pytest.fixture
def backend(model_server):
    server = ServerConfig(name="test", kind=model_server.kind, url=model_server.url)
    made = registry().servers[model_server.kind].backend(server, Settings(model_timeout=300, connect_timeout=5))
    yield made
    made.close()


@pytest.fixture
def calls() -> list[ModelCall]:
    return []


@pytest.fixture
def asker(model_server, backend, calls):
    return Asker(backend=backend, record=calls.append, model=model_server.model, options={"temperature": 0})


def test_the_server_lists_the_model_and_tells_its_context(backend, model_server):
    assert backend.has_model(model_server.model)
    info = backend.info(model_server.model)
    assert backend.window(model_server.model, {}) >= 2048
    if model_server.kind == "ollama":  # OpenAI-compatible servers do not say
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


def test_a_missing_model_is_named_with_how_to_get_it(backend, model_server):
    call = ModelCall(model="no-such-model-gristmill:latest", messages=[{"role": "user", "content": "hi"}])

    how = "gristmill pull no-such-model-gristmill" if model_server.kind == "ollama" else "load or download it"
    with pytest.raises(ModelMissing, match=how):
        backend.chat(call)
    assert call.error and "no-such-model-gristmill" in call.error

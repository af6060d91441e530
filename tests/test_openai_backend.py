"""The OpenAI-compatible backend through the real `openai` client, against the stand-in in OpenAI mode."""

from __future__ import annotations

import base64
import logging

import pytest

from daemon.domain import ModelCall
from daemon.errors import BadAnswer, ModelError, ModelTimeout, NotAModelServer
from daemon.llm.ask import Asker
from daemon.llm.openai_backend import OpenAIBackend
from daemon.settings import ServerConfig
from daemon.standin import StandinConfig, StandinServer
from daemon.steps import classify
from tests.support import INVOICE, LETTER

LABELS = {"invoice": "A bill", "receipt": "A proof of payment", "letter": "Correspondence"}


@pytest.fixture
def server():
    with StandinServer(StandinConfig(api="openai", models=["qwen2.5-7b-instruct"])) as running:
        yield running


def backend_for(server: StandinServer, **kwargs) -> OpenAIBackend:
    config = ServerConfig(name="lmstudio", kind="openai", url=f"{server.url}/v1")
    return OpenAIBackend(config, **{"timeout": 10, "connect_timeout": 2, **kwargs})


def classify_with(backend: OpenAIBackend, document: str, calls: list[ModelCall]) -> dict:
    asker = Asker(backend=backend, record=calls.append, model="qwen2.5-7b-instruct", step_id="kind")
    return classify.answer(asker, classify.request(document, LABELS), list(LABELS))


def sent_formats(server: StandinServer) -> list[str | None]:
    return [(r["body"].get("response_format") or {}).get("type") for r in server.recorded()]


def test_structured_answers_use_json_schema_and_usage_gives_tokens(server):
    calls: list[ModelCall] = []

    assert classify_with(backend_for(server), INVOICE, calls) == {"label": "invoice", "confidence": 0.9}

    assert sent_formats(server) == ["json_schema"]
    (call,) = calls
    assert call.prompt_tokens and call.completion_tokens and call.done_reason == "stop"
    body = server.recorded()[0]["body"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_a_server_refusing_json_schema_gets_json_object_with_the_schema_learned_once(server, caplog):
    server.config.quirks = {"refuse_json_schema"}
    backend, calls = backend_for(server), []

    with caplog.at_level(logging.WARNING, logger="gristmill"):
        first = classify_with(backend, INVOICE, calls)
        second = classify_with(backend, LETTER, calls)

    assert (first["label"], second["label"]) == ("invoice", "letter")
    assert sent_formats(server) == ["json_schema", "json_object", "json_object"]  # learned: asked once
    prompt = server.recorded()[1]["body"]["messages"]
    assert any("JSON schema:" in m["content"] for m in prompt if m["role"] == "system")
    refusals = [r.getMessage() for r in caplog.records if "refuses response_format" in r.getMessage()]
    assert len(refusals) == 1 and "'lmstudio'" in refusals[0] and "json_schema" in refusals[0]


def test_a_server_refusing_both_gets_the_schema_in_a_plain_prompt(server):
    server.config.quirks = {"refuse_json_schema", "refuse_json_object"}
    calls: list[ModelCall] = []

    assert classify_with(backend_for(server), INVOICE, calls)["label"] == "invoice"

    assert sent_formats(server) == ["json_schema", "json_object", None]


def test_lm_studio_refusing_json_object_keeps_json_schema(server):
    server.config.quirks = {"refuse_json_object"}
    calls: list[ModelCall] = []
    assert classify_with(backend_for(server), INVOICE, calls)["label"] == "invoice"
    assert sent_formats(server) == ["json_schema"]


def test_a_server_ignoring_the_schema_is_validated_like_any_answer(server):
    server.config.quirks = {"ignore_schema"}  # vLLM >= 0.12: 200, the JSON in prose and a fence
    assert classify_with(backend_for(server), INVOICE, [])["label"] == "invoice"


def test_reasoning_is_stripped_from_the_answer_and_recorded(server):
    for quirk, expected in (("reasoning_content", "Considering the document."), ("think", "Let me think about this.")):
        server.config.quirks = {quirk}
        calls: list[ModelCall] = []
        asker = Asker(backend=backend_for(server), record=calls.append, model="qwen2.5-7b-instruct")
        assert asker.text([{"role": "user", "content": "<document>hello world</document>"}]) == "hello world"
        assert calls[0].thinking == expected


def test_a_cut_answer_is_asked_again_with_more_max_tokens(server):
    server.config.default_max_tokens = 4
    calls: list[ModelCall] = []
    asker = Asker(backend=backend_for(server), record=calls.append, model="qwen2.5-7b-instruct", step_id="s")

    assert asker.text([{"role": "user", "content": "<document>a b c d e f g h</document>"}]) == "a b c d e f g h"

    assert [c.done_reason for c in calls] == ["length", "stop"]
    assert server.recorded()[1]["body"]["max_tokens"] >= 1024


def test_images_go_as_image_url_data_urls(server):
    server.config.vision = ["qwen2.5-vl"]
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 8
    image = base64.b64encode(png).decode()
    call = ModelCall(model="qwen2.5-vl", messages=[{"role": "user", "content": "what?", "images": [image]}])

    backend_for(server).chat(call)

    parts = server.recorded()[0]["body"]["messages"][0]["content"]
    assert parts[1] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{image}"}}
    assert call.answer == f"An image of {len(png)} bytes."


def test_the_api_key_comes_from_the_named_variable_and_is_used(server):
    server.config.api_key = "sk-local-secret"
    call = ModelCall(model="qwen2.5-7b-instruct", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(ModelError, match="refused the API key") as refused:
        backend_for(server).chat(call)
    assert "sk-local-secret" not in refused.value.message
    backend_for(server, api_key="sk-local-secret").chat(call)
    assert call.answer == "hi" and "sk-local-secret" not in repr(call)


def test_a_stalled_stream_times_out(server):
    server.config.update({"quirks": ["stall"], "stall_seconds": 30})
    with pytest.raises(ModelTimeout):
        backend_for(server, timeout=1).chat(ModelCall(model="qwen2.5-7b-instruct", messages=[
            {"role": "user", "content": "one two three four five six"}]))  # fmt: skip


def test_a_missing_model_says_how_such_a_server_gets_models(server):
    with pytest.raises(ModelError, match="is not on the model server 'lmstudio'.*lms get"):
        backend_for(server).chat(ModelCall(model="nope", messages=[{"role": "user", "content": "hi"}]))


@pytest.mark.parametrize("mode", ["html", "501", "garbage"])
def test_a_url_that_is_no_openai_server_is_one_sentence_without_html(server, mode):
    server.config.impostor = mode
    backend = backend_for(server)
    call = ModelCall(model="qwen2.5-7b-instruct", messages=[{"role": "user", "content": "hi"}])
    for attempt in (lambda: backend.chat(call), backend.list_models, backend.version):
        with pytest.raises(NotAModelServer) as caught:
            attempt()
        assert "answers but is not an OpenAI-compatible server" in caught.value.message
        assert "<" not in caught.value.message and "nginx" not in caught.value.message
    assert "<" not in call.error


def test_an_unusable_answer_is_still_an_unusable_answer(server):
    server.config.quirks = {"garbage"}
    asker = Asker(backend=backend_for(server), record=lambda call: None, model="qwen2.5-7b-instruct")
    with pytest.raises(BadAnswer):
        asker.json([{"role": "user", "content": "x"}], classify.schema(list(LABELS)), lambda answer: answer)

"""The stand-in's OpenAI-compatible API, its server quirks and impostors, driven by the real `openai` client."""

from __future__ import annotations

import base64
import json

import httpx
import ollama
import openai
import pytest

from daemon.standin import StandinConfig, StandinServer
from daemon.standin.brain import count_tokens

SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["invoice", "receipt", "letter"]},
        "confidence": {"type": "number"},
    },
    "required": ["label", "confidence"],
}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "kind", "schema": SCHEMA, "strict": True}}
DOC = "Classify.\n<document>Invoice 7: pay this invoice, not the receipt.</document>"

_clients: list[openai.OpenAI] = []


@pytest.fixture(autouse=True)
def _close_clients():
    """Close the clients a test opened, so no sockets leak between tests."""
    yield
    while _clients:
        _clients.pop().close()


def client(server: StandinServer, key: str = "x", timeout: float = 10) -> openai.OpenAI:
    """The real openai client for the stand-in, its own retries off as gristmill's are."""
    _clients.append(openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=timeout))
    return _clients[-1]


def chat(server: StandinServer, content, model: str = "llama3.2", **kwargs):
    """One user message, non-streaming."""
    messages = [{"role": "user", "content": content}]
    return client(server).chat.completions.create(model=model, messages=messages, **kwargs)


# --- the API ----------------------------------------------------------------------------------


def test_models_lists_ollama_names_and_one_model(standin):
    standin.config.weak = ["hf.co/bob/Tiny-GGUF:Q8_0"]
    page = client(standin).models.list()
    assert [m.id for m in page.data] == ["llama3.2:latest", "hf.co/bob/Tiny-GGUF:Q8_0"]
    assert page.data[0].object == "model" and page.data[0].owned_by == "library"
    assert client(standin).models.retrieve("llama3.2").id == "llama3.2:latest"
    with pytest.raises(openai.NotFoundError) as error:
        client(standin).models.retrieve("nope")
    assert error.value.code == "model_not_found"


def test_openai_only_server_lists_names_as_configured(standin):
    standin.config.update({"api": "openai", "models": ["qwen2.5-7b-instruct"]})
    assert [m.id for m in client(standin).models.list().data] == ["qwen2.5-7b-instruct"]


def test_chat_answers_with_usage_and_stop(standin):
    prompt = "Summarise in at most 4 words.\n<document>The quick brown fox jumps over the dog.</document>"
    reply = chat(standin, prompt)
    assert reply.object == "chat.completion" and reply.id.startswith("chatcmpl-")
    choice = reply.choices[0]
    assert choice.message.role == "assistant" and choice.message.content == "The quick brown fox"
    assert choice.finish_reason == "stop"
    assert reply.usage.prompt_tokens == count_tokens(prompt)
    assert reply.usage.completion_tokens == count_tokens("The quick brown fox") == 6
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 6
    assert standin.requests[-1]["path"] == "/v1/chat/completions"


def test_response_format_json_schema_json_object_and_text(standin):
    answer = json.loads(chat(standin, DOC, response_format=JSON_SCHEMA).choices[0].message.content)
    assert answer == {"label": "invoice", "confidence": 0.9}
    as_object = chat(standin, "<document>some words</document>", response_format={"type": "json_object"})
    assert json.loads(as_object.choices[0].message.content) == {"text": "some words"}
    as_text = chat(standin, "<document>some words</document>", response_format={"type": "text"})
    assert as_text.choices[0].message.content == "some words"


def test_bad_requests_get_openai_error_bodies(standin):
    cases = [
        ({"response_format": {"type": "xml"}}, "response_format.type", "invalid_value"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema", "missing_required_parameter"),
        ({"max_tokens": 0}, "max_tokens", "integer_below_min_value"),
        ({"stream_options": {"include_usage": True}}, "stream_options", None),
    ]
    for extra, param, code in cases:
        with pytest.raises(openai.BadRequestError) as error:
            chat(standin, "x", **extra)
        assert error.value.status_code == 400 and error.value.param == param and error.value.code == code
        assert set(error.value.body) == {"message", "type", "param", "code"}
    with pytest.raises(openai.NotFoundError) as missing:
        chat(standin, "x", model="nope")
    assert missing.value.code == "model_not_found" and "nope" in missing.value.message
    raw = httpx.post(f"{standin.url}/v1/chat/completions", content=b"{nope")
    assert raw.status_code == 400 and raw.json()["error"]["type"] == "invalid_request_error"


def test_images_in_content_parts_reach_the_brain(standin):
    data = base64.b64encode(b"abcdef").decode()
    parts = [
        {"type": "text", "text": "what?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
    ]
    with pytest.raises(openai.BadRequestError):
        chat(standin, parts)
    standin.config.vision = ["llava"]
    assert chat(standin, parts, model="llava").choices[0].message.content == "An image of 6 bytes."
    web = [{"type": "image_url", "image_url": {"url": "http://127.0.0.1/cat.png"}}]
    with pytest.raises(openai.BadRequestError) as error:
        chat(standin, web, model="llava")
    assert "data URL" in error.value.message


def test_streaming_sends_sse_chunks_then_usage(standin):
    text = "<document>" + " ".join(f"w{i}" for i in range(9)) + "</document>"
    whole = chat(standin, text).choices[0].message.content
    stream = client(standin).chat.completions.create(
        model="llama3.2",
        messages=[{"role": "user", "content": text}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == count_tokens(whole)
    assert all(c.usage is None for c in chunks[:-1])
    raw = httpx.post(f"{standin.url}/v1/chat/completions", json={"model": "llama3.2", "stream": True, "messages": [
        {"role": "user", "content": "hi"}]})  # fmt: skip
    assert raw.headers["content-type"].startswith("text/event-stream")
    assert raw.text.startswith("data: {") and raw.text.endswith("data: [DONE]\n\n")


def test_max_tokens_cuts_the_answer_with_finish_reason_length(standin):
    doc = "<document>" + " ".join(f"w{i}" for i in range(12)) + "</document>"
    cut = chat(standin, doc, max_completion_tokens=4)
    assert cut.choices[0].finish_reason == "length"
    assert cut.choices[0].message.content == "w0 w1 w2"  # 4 tokens x 3/4 = 3 words
    assert cut.usage.completion_tokens <= 4
    assert chat(standin, doc, max_tokens=100).choices[0].finish_reason == "stop"
    standin.config.default_max_tokens = 4
    assert chat(standin, doc).choices[0].finish_reason == "length"
    assert chat(standin, doc, max_tokens=100).choices[0].finish_reason == "stop"  # more room: the whole answer
    stream = client(standin).chat.completions.create(
        model="llama3.2", messages=[{"role": "user", "content": doc}], stream=True
    )
    assert [c.choices[0].finish_reason for c in stream][-1] == "length"


# --- quirks -----------------------------------------------------------------------------------


def test_refuse_json_schema_names_response_format(standin):
    standin.config.quirks = {"refuse_json_schema"}
    with pytest.raises(openai.BadRequestError) as error:
        chat(standin, DOC, response_format=JSON_SCHEMA)
    assert "response_format" in error.value.message and error.value.param == "response_format"
    assert json.loads(chat(standin, DOC, response_format={"type": "json_object"}).choices[0].message.content)


def test_refuse_json_object_like_lm_studio(standin):
    standin.config.quirks = {"refuse_json_object"}
    with pytest.raises(openai.BadRequestError) as error:
        chat(standin, DOC, response_format={"type": "json_object"})
    assert error.value.body == "'response_format.type' must be 'json_schema' or 'text'"
    assert error.value.response.json() == {"error": "'response_format.type' must be 'json_schema' or 'text'"}
    assert json.loads(chat(standin, DOC, response_format=JSON_SCHEMA).choices[0].message.content)["label"] == "invoice"


def test_ignore_schema_answers_200_with_prose_around_fenced_json(standin):
    standin.config.quirks = {"ignore_schema"}
    content = chat(standin, DOC, response_format=JSON_SCHEMA).choices[0].message.content
    with pytest.raises(ValueError):
        json.loads(content)
    assert content.startswith("Here is the JSON you asked for:\n```json\n")
    assert json.loads(content.split("```json\n", 1)[1].split("\n```", 1)[0])["label"] == "invoice"


def test_reasoning_content_and_think_in_content(standin):
    standin.config.quirks = {"reasoning_content"}
    message = chat(standin, "<document>hello world</document>").choices[0].message
    assert message.reasoning_content == "Considering the document." and message.content == "hello world"
    stream = client(standin).chat.completions.create(
        model="llama3.2", messages=[{"role": "user", "content": "hi there"}], stream=True
    )
    deltas = [c.choices[0].delta for c in stream]
    assert "".join(getattr(d, "reasoning_content", None) or "" for d in deltas) == "Considering the document."
    standin.config.quirks = {"think"}
    assert chat(standin, "hi").choices[0].message.content == "<think>Let me think about this.</think>\nhi"


def test_cut_quirk_gives_finish_reason_length(standin):
    reply = chat(standin, "<document>[[standin:cut]] one two three four</document>")
    assert reply.choices[0].finish_reason == "length" and reply.choices[0].message.content == "one two"


def test_stall_quirk_stops_sending_after_the_first_chunks(standin):
    standin.config.update({"quirks": ["stall"], "stall_seconds": 60})
    quick = openai.OpenAI(base_url=standin.url + "/v1", api_key="x", max_retries=0, timeout=1.0)
    _clients.append(quick)
    stream = quick.chat.completions.create(
        model="llama3.2", messages=[{"role": "user", "content": "one two three four five six"}], stream=True
    )
    seen = []
    with pytest.raises(openai.APITimeoutError):
        for chunk in stream:
            seen.append(chunk.choices[0].delta.content)
    assert seen == ["", "one two "]  # the role chunk and one piece, then silence


def test_stall_that_ends_still_delivers_the_whole_answer(standin):
    standin.config.update({"quirks": ["stall"], "stall_seconds": 0.05})
    stream = client(standin).chat.completions.create(
        model="llama3.2", messages=[{"role": "user", "content": "one two three"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "one two three"


def test_api_key_is_checked_when_set(standin):
    standin.config.api_key = "sk-local"
    with pytest.raises(openai.AuthenticationError) as wrong:
        client(standin, key="sk-wrong").models.list()
    assert wrong.value.status_code == 401 and wrong.value.code == "invalid_api_key"
    missing = httpx.get(f"{standin.url}/v1/models")
    assert missing.status_code == 401 and "API key" in missing.json()["error"]["message"]
    assert client(standin, key="sk-local").models.list().data
    assert httpx.get(f"{standin.url}/api/tags").status_code == 200  # Ollama's API has no key


def test_unloadable_model_busy_queue_and_injected_failures(standin):
    standin.config.unloadable = ["broken"]
    with pytest.raises(openai.InternalServerError) as died:
        chat(standin, "x", model="broken")
    assert died.value.status_code == 500 and "llama runner process has terminated" in died.value.message
    standin.config.update({"fail_next": 1, "fail_status": 503})
    with pytest.raises(openai.InternalServerError) as busy:
        chat(standin, "x")
    assert busy.value.status_code == 503 and "server busy" in busy.value.message
    assert chat(standin, "again").choices[0].message.content == "again"


# --- which API, and impostors -------------------------------------------------------------------


def test_api_openai_has_no_ollama_routes(standin):
    standin.config.api = "openai"
    for path in ("/api/tags", "/api/version", "/"):
        answer = httpx.get(standin.url + path)
        assert answer.status_code == 404 and "error" in answer.json()
    with pytest.raises(ollama.ResponseError) as error:
        ollama.Client(host=standin.url, timeout=10).list()
    assert error.value.status_code == 404
    assert chat(standin, "still here").choices[0].message.content == "still here"


def test_api_ollama_has_no_openai_routes(standin):
    standin.config.api = "ollama"
    with pytest.raises(openai.NotFoundError):
        client(standin).models.list()
    assert httpx.post(f"{standin.url}/v1/chat/completions", json={}).text == "404 page not found"
    assert httpx.get(f"{standin.url}/api/tags").status_code == 200


@pytest.mark.parametrize("mode, status, kind", [("html", 200, "text/html"), ("501", 501, "text/html"),
                                                ("garbage", 200, "application/json")])  # fmt: skip
def test_impostors_answer_every_path_but_are_no_model_server(standin, mode, status, kind):
    standin.config.impostor = mode
    for method, path in (("GET", "/"), ("GET", "/api/tags"), ("POST", "/api/chat"), ("GET", "/v1/models"),
                         ("POST", "/v1/chat/completions")):  # fmt: skip
        answer = httpx.request(method, standin.url + path, json={"model": "llama3.2"})
        assert (answer.status_code, answer.headers["content-type"].split(";")[0]) == (status, kind)
        with pytest.raises(ValueError):
            json.loads(answer.text)
    try:
        result = chat(standin, "x")
    except (openai.APIError, ValueError):
        pass
    else:  # the openai client hands a 200 that is not JSON back as a str, without an error
        assert mode == "html" and isinstance(result, str) and result.startswith("<!DOCTYPE html>")
    with pytest.raises((ollama.ResponseError, ValueError)):
        ollama.Client(host=standin.url, timeout=10).list()
    assert httpx.get(f"{standin.url}/_standin/config").json()["impostor"] == mode  # control still answers


def test_a_server_for_openai_only_from_config():
    config = StandinConfig(models=["mistral-7b"], api="openai", quirks={"refuse_json_schema"})
    with StandinServer(config) as server:
        assert [m.id for m in client(server).models.list().data] == ["mistral-7b"]
        with pytest.raises(openai.BadRequestError):
            chat(server, DOC, model="mistral-7b", response_format=JSON_SCHEMA)

"""The stand-in's model life cycle on Ollama's API: pulls, names, /api/ps, keep_alive, reloads,
per-model latency, cut and stalled answers, and the weaker model that eval tests compare against."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import ollama
import openai
import pytest

from daemon.standin import StandinConfig, StandinServer

HF = "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q8_0"
LABELS = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["invoice", "receipt", "letter"]},
        "confidence": {"type": "number"},
    },
    "required": ["label", "confidence"],
}
FIELDS = {
    "type": "object",
    "properties": {
        "kind": {"type": "string", "enum": ["invoice", "receipt"]},
        "vendor": {"type": "string"},
        "total": {"type": "number"},
        "paid": {"type": "boolean"},
    },
    "required": ["kind", "vendor", "total", "paid"],
}

_clients: dict[tuple[str, float], ollama.Client] = {}


class FakeClock:
    """A clock that stands still until a test moves it."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def _close_clients():
    yield
    while _clients:
        _clients.popitem()[1].close()


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def timed(clock):
    """A stand-in whose keep_alive expiry follows the test's clock."""
    with StandinServer(clock=clock) as server:
        yield server


def client(server: StandinServer, timeout: float = 10) -> ollama.Client:
    """A real ollama client for the stand-in, one per server and timeout in a test."""
    key = (server.url, timeout)
    if key not in _clients:
        _clients[key] = ollama.Client(host=server.url, timeout=timeout)
    return _clients[key]


def say(server: StandinServer, text: str = "hello", model: str = "llama3.2", **kwargs) -> ollama.ChatResponse:
    return client(server).chat(model=model, messages=[{"role": "user", "content": text}], **kwargs)


# --- pull -------------------------------------------------------------------------------------


def test_pull_streams_progress_per_layer_and_installs_the_model(standin):
    standin.config.update({"pull_steps": 3, "pull_interval": 0.001})
    progress = list(client(standin).pull(HF, stream=True))
    statuses = [p.status for p in progress]
    assert statuses[0] == "pulling manifest" and statuses[-3:] == ["verifying sha256 digest", "writing manifest",
                                                                    "success"]  # fmt: skip
    layer = [p for p in progress if p.digest]
    assert len(layer) == 3 and {p.status for p in layer} == {f"pulling {layer[0].digest[7:19]}"}
    assert [p.completed for p in layer] == [layer[0].total // 3, layer[0].total * 2 // 3, layer[0].total]
    listed = {m.model: m for m in client(standin).list().models}
    assert listed[HF].details.quantization_level == "Q8_0" and listed[HF].details.parameter_size == "1B"
    assert say(standin, "hi", model=HF).message.content == "hi"


def test_pull_of_a_library_model_has_four_layers_and_stream_false(standin):
    progress = list(client(standin).pull("qwen3:8b", stream=True))
    assert len({p.digest for p in progress if p.digest}) == 4  # model, template, license, params
    assert client(standin).pull("mistral", stream=False).status == "success"
    assert {"qwen3:8b", "mistral:latest"} <= {m.model for m in client(standin).list().models}
    assert client(standin).show("qwen3:8b").details.parameter_size == "8B"


def test_pull_errors_are_ollamas(standin):
    for bad in ("bad name", "hf.co/some.user/repo", "a//b"):
        with pytest.raises(ollama.ResponseError) as invalid:
            client(standin).pull(bad)
        assert (invalid.value.status_code, invalid.value.error) == (400, "invalid model name")
    standin.config.pullable = ["llama3.2"]
    with pytest.raises(ollama.ResponseError) as unknown:
        list(client(standin).pull("mistral", stream=True))
    assert unknown.value.error == "pull model manifest: file does not exist"
    with pytest.raises(ollama.ResponseError) as unknown_whole:
        client(standin).pull("mistral", stream=False)
    assert unknown_whole.value.status_code == 500
    standin.config.pullable = None
    with pytest.raises(ollama.ResponseError) as tag:
        list(client(standin).pull("hf.co/bob/Tiny-GGUF:weird", stream=True))
    assert "not a valid quantization scheme" in tag.value.error
    assert "mistral:latest" not in {m.model for m in client(standin).list().models}


def test_show_lists_capabilities_context_and_details(standin):
    standin.config.update({"tools": ["qwen3:8b"], "thinking": ["qwen3:8b"], "context_by_model": {"qwen3:8b": 40960}})
    shown = client(standin).show("qwen3:8b")
    assert shown.capabilities == ["completion", "thinking", "tools"]
    assert shown.modelinfo["llama.context_length"] == 40960
    assert shown.modelinfo["general.parameter_count"] == 8_000_000_000
    assert (shown.details.parameter_size, shown.details.quantization_level) == ("8B", "Q4_K_M")
    assert client(standin).show("llama3.2").modelinfo["llama.context_length"] == 8192


# --- loading, keep_alive, reloads ------------------------------------------------------------


def test_ps_lists_loaded_models_with_context_and_expiry(timed, clock):
    assert client(timed).ps().models == []
    say(timed, options={"num_ctx": 4096}, keep_alive="30m")
    (loaded,) = client(timed).ps().models
    assert loaded.model == loaded.name == "llama3.2:latest" and loaded.context_length == 4096
    assert loaded.size == loaded.size_vram > 4096 * 100_000
    assert loaded.expires_at == datetime.fromtimestamp(clock.now + 1800, UTC)
    clock.now += 1799
    assert len(client(timed).ps().models) == 1
    clock.now += 1
    assert client(timed).ps().models == []


def test_keep_alive_zero_unloads_and_negative_keeps_forever(timed, clock):
    say(timed, keep_alive=0)
    assert client(timed).ps().models == []
    say(timed, keep_alive=-1)
    clock.now += 10 * 365 * 24 * 3600
    assert [m.model for m in client(timed).ps().models] == ["llama3.2:latest"]
    say(timed)  # no keep_alive: the switch's 300 s
    clock.now += 301
    assert client(timed).ps().models == []
    assert timed.loaded.loads("llama3.2") == 2 and timed.loaded.reloads("llama3.2") == 0  # the third was warm
    with pytest.raises(ollama.ResponseError) as bad:
        say(timed, keep_alive="soon")
    assert (bad.value.status_code, bad.value.error) == (400, 'time: invalid duration "soon"')


def test_a_different_num_ctx_or_none_after_one_reloads(standin):
    for num_ctx in (8192, 8192, None, 8192, 4096):
        say(standin, options={"num_ctx": num_ctx} if num_ctx else {})
    assert standin.loaded.loads("llama3.2") == 1
    assert standin.loaded.reloads("llama3.2:latest") == 3
    assert standin.loaded.num_ctx_sent("llama3.2") == [8192, 8192, None, 8192, 4096]
    assert client(standin).ps().models[0].context_length == 4096
    snapshot = httpx.get(f"{standin.url}/_standin/loaded").json()
    assert snapshot["llama3.2:latest"] | {"options": None} == {"loaded": True, "num_ctx": 4096, "loads": 1,
                                                               "reloads": 3, "options": None}  # fmt: skip
    assert snapshot["llama3.2:latest"]["options"][0] == {"num_ctx": 8192}
    standin.reset()
    assert standin.loaded.reloads("llama3.2") == 0 and client(standin).ps().models == []


def test_one_num_ctx_per_model_never_reloads_and_v1_counts_as_none(standin):
    standin.config.models = ["llama3.2", "qwen3"]
    for model in ("llama3.2", "qwen3", "llama3.2", "qwen3"):
        say(standin, model=model, options={"num_ctx": 8192})
    assert [standin.loaded.reloads(m) for m in ("llama3.2", "qwen3")] == [0, 0]
    with openai.OpenAI(base_url=standin.url + "/v1", api_key="x", max_retries=0) as oa:
        oa.chat.completions.create(model="qwen3", messages=[{"role": "user", "content": "x"}])
    assert standin.loaded.reloads("qwen3") == 1 and standin.loaded.num_ctx_sent("qwen3")[-1] is None


def test_load_only_requests_and_load_latency(standin):
    standin.config.load_latency = 0.02
    loaded = client(standin).chat(model="llama3.2", messages=[])
    assert loaded.done_reason == "load" and len(client(standin).ps().models) == 1
    warm = say(standin)
    assert warm.load_duration == 1_000_000  # already loaded: no load paid
    unloaded = client(standin).generate(model="llama3.2", prompt="", keep_alive=0)
    assert unloaded.done_reason == "unload" and client(standin).ps().models == []
    assert say(standin).load_duration == 20_000_000


def test_unloadable_model_is_a_500(standin):
    standin.config.unloadable = ["big"]
    with pytest.raises(ollama.ResponseError) as died:
        say(standin, model="big")
    assert died.value.status_code == 500 and died.value.error.startswith("llama runner process has terminated")
    assert "big:latest" in {m.model for m in client(standin).list().models}


# --- answers: latency per model, cut, stall ------------------------------------------------------


def test_latency_by_model_shows_in_the_reported_durations(standin):
    standin.config.update({"models": ["fast", "slow"], "latency_by_model": {"slow": 0.02}})
    fast, slow = say(standin, model="fast"), say(standin, model="slow:latest")
    assert fast.prompt_eval_duration + fast.eval_duration == 2000  # the 1 µs floors of a zero latency
    assert slow.prompt_eval_duration + slow.eval_duration == 20_000_000


def test_num_predict_and_cut_quirk_give_done_reason_length(standin):
    doc = "<document>one two three four five six seven eight</document>"
    cut = say(standin, doc, options={"num_predict": 4})
    assert (cut.message.content, cut.done_reason) == ("one two three", "length")
    assert say(standin, doc, options={"num_predict": -1}).done_reason == "stop"
    standin.config.quirks = {"cut"}
    halved = say(standin, doc)
    assert (halved.message.content, halved.done_reason) == ("one two three four", "length")
    chunks = list(client(standin).chat(model="llama3.2", messages=[{"role": "user", "content": doc}], stream=True))
    assert chunks[-1].done_reason == "length"


def test_stall_quirk_on_ollamas_stream(standin):
    standin.config.update({"quirks": ["stall"], "stall_seconds": 60})
    stream = client(standin, timeout=1.0).chat(
        model="llama3.2", messages=[{"role": "user", "content": "one two three four five six"}], stream=True
    )
    seen = []
    with pytest.raises(httpx.ReadTimeout):
        for chunk in stream:
            seen.append(chunk.message.content)
    assert seen == ["one two "]


# --- the weaker model ------------------------------------------------------------------------------


def test_weak_model_differs_exactly_on_hard_documents():
    docs = [
        "Invoice 7. Pay the invoice; the receipt follows.",
        "[[standin:hard]] Invoice 7. Pay the invoice; the receipt follows.",
        "[[standin:hard]] A letter from grandma.",
        "A receipt for your letter.",
    ]
    config = StandinConfig(models=["llama3.2"], weak=["tiny"])
    with StandinServer(config) as server:
        labels = {m: [json.loads(say(server, f"<document>{d}</document>", m, format=LABELS).message.content)
                      for d in docs] for m in ("llama3.2", "tiny")}  # fmt: skip
    assert [a["label"] for a in labels["llama3.2"]] == ["invoice", "invoice", "letter", "receipt"]
    # hard documents only: the fewest mentions, ties to the last declared label
    # (invoice 2, receipt 1, letter 0 -> letter; invoice 0, receipt 0, letter 1 -> receipt)
    assert [a["label"] for a in labels["tiny"]] == ["invoice", "letter", "receipt", "receipt"]
    assert [a["confidence"] for a in labels["tiny"]] == [a["confidence"] for a in labels["llama3.2"]]


def test_weak_model_changes_the_first_plain_field_of_an_extraction():
    doc = "<document>[[standin:hard]] receipt\nVendor: ACME\nTotal: 12.50\nPaid: yes</document>"
    with StandinServer(StandinConfig(weak=["tiny"])) as server:
        normal = json.loads(say(server, doc, format=FIELDS).message.content)
        weak = json.loads(say(server, doc, "tiny", format=FIELDS).message.content)
        with openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0) as oa:
            fmt = {"type": "json_schema", "json_schema": {"name": "bill", "schema": FIELDS}}
            reply = oa.chat.completions.create(
                model="tiny", messages=[{"role": "user", "content": doc}], response_format=fmt
            )
    assert normal == {"kind": "receipt", "vendor": "ACME", "total": 12.5, "paid": True}
    assert weak == {"kind": "invoice", "vendor": "ACME (weak)", "total": 12.5, "paid": True}
    assert json.loads(reply.choices[0].message.content) == weak
    later = {"type": "object", "properties": {"total": {"type": "number"}, "paid": {"type": "boolean"}}}
    with StandinServer(StandinConfig(weak=["tiny"])) as server:
        assert json.loads(say(server, doc, "tiny", format=later).message.content) == {"total": 13.5, "paid": True}

"""The Ollama backend done right, against the stand-in: one num_ctx per model, keep_alive, think, streaming timeouts."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import ollama
import pytest

from daemon.domain import ModelCall
from daemon.errors import AnswerCut, ModelError, ModelTimeout, ModelUnavailable, NotAModelServer
from daemon.llm.ask import Asker
from daemon.llm.ollama_backend import OllamaBackend
from daemon.llm.ollama_chat import DirectChat
from daemon.settings import ServerConfig
from daemon.standin import StandinConfig, StandinServer
from tests.support import make_certificates, wait_for

SHORT = "<document>A short note about the garden.</document>"
LONG = "<document>" + " ".join(f"word{i}" for i in range(3000)) + "</document>"


def backend_for(server: StandinServer, **kwargs) -> OllamaBackend:
    config = ServerConfig(name="box", kind="ollama", url=server.url)
    return OllamaBackend(config, **{"timeout": 10, "connect_timeout": 2, "keep_alive": "30m", **kwargs})


def ask(backend: OllamaBackend, content: str, model: str = "llama3.2", **options) -> ModelCall:
    call = ModelCall(model=model, messages=[{"role": "user", "content": content}], options=options)
    return backend.chat(call)


def test_one_num_ctx_per_model_for_the_life_of_the_backend(standin):
    standin.config.update({"context_by_model": {"tiny": 4096}, "models": ["llama3.2", "tiny"]})
    backend = backend_for(standin, context_tokens=8192)

    for content in (SHORT, LONG, SHORT, LONG):
        ask(backend, content)
        ask(backend, content, model="tiny")

    assert standin.loaded.num_ctx_sent("llama3.2") == [8192] * 4
    assert standin.loaded.num_ctx_sent("tiny") == [4096] * 4  # capped by the model's own context
    assert standin.loaded.reloads("llama3.2") == 0 and standin.loaded.reloads("tiny") == 0
    assert standin.loaded.loads("llama3.2") == 1
    assert backend.window("llama3.2", {}) == 8192 and backend.window("tiny", {}) == 4096


def test_the_workflows_num_ctx_wins_and_is_what_the_planner_sees(standin):
    backend = backend_for(standin, context_tokens=8192)

    call = ask(backend, SHORT, num_ctx=2048)

    assert call.options["num_ctx"] == 2048  # recorded as sent
    assert standin.loaded.num_ctx_sent("llama3.2") == [2048]
    assert backend.window("llama3.2", {"num_ctx": 2048}) == 2048
    assert backend.window("llama3.2", {"num_ctx": 99999}) == 8192  # Ollama caps it at the model's context


def test_keep_alive_is_sent_with_every_call(standin):
    ask(backend_for(standin, keep_alive="45m"), SHORT)

    body = standin.recorded()[-1]["body"]
    assert body["keep_alive"] == "45m" and body["stream"] is True
    (loaded,) = backend_for(standin).loaded()
    assert loaded.name == "llama3.2:latest" and loaded.context_length == 8192 and loaded.size_vram


def test_think_goes_only_to_models_that_can_think(standin):
    standin.config.update({"models": ["llama3.2"], "thinking": ["qwen3"]})
    backend = backend_for(standin)

    for model in ("llama3.2", "qwen3"):
        backend.chat(ModelCall(model=model, messages=[{"role": "user", "content": SHORT}]), think=False)

    plain, thinker = (r["body"] for r in standin.recorded())
    assert "think" not in plain and thinker["think"] is False


def test_a_slow_but_steady_stream_is_never_cut_by_the_timeout(standin):
    # 2.5 s in all, but a piece at least every ~0.6 s: a timeout of silence (1.5 s) lets it finish.
    standin.config.latency = 2.5
    call = ask(backend_for(standin, timeout=1.5), "<document>one two three four five six seven</document>")

    assert call.answer == "one two three four five six seven" and call.done_reason == "stop"
    assert call.wall_ms and call.wall_ms > 1500


def test_a_server_that_stops_sending_is_caught_after_the_timeout(standin):
    standin.config.update({"quirks": ["stall"], "stall_seconds": 30})
    call = ModelCall(model="llama3.2", messages=[{"role": "user", "content": SHORT}])

    with pytest.raises(ModelTimeout, match="sent nothing for too long"):
        backend_for(standin, timeout=1).chat(call)
    assert call.error


def test_a_model_that_cannot_load_is_a_model_error_naming_the_problem(standin):
    standin.config.unloadable = ["huge:70b"]
    call = ModelCall(model="huge:70b", messages=[{"role": "user", "content": SHORT}])

    with pytest.raises(ModelError) as caught:
        backend_for(standin).chat(call)

    assert type(caught.value) is ModelError  # an attempt, not an outage
    assert "could not run model 'huge:70b'" in caught.value.message and "smaller model" in caught.value.message
    assert "llama runner process has terminated" in call.error


@pytest.mark.parametrize("mode", ["html", "501", "garbage"])
def test_a_url_that_is_no_ollama_server_is_one_sentence_without_html(standin, mode):
    standin.config.impostor = mode
    backend = backend_for(standin)
    call = ModelCall(model="llama3.2", messages=[{"role": "user", "content": SHORT}])

    for attempt in (lambda: backend.chat(call), backend.list_models, backend.version):
        with pytest.raises(NotAModelServer) as caught:
            attempt()
        message = caught.value.message
        assert "answers but is not an Ollama server" in message and "<" not in message, message
    assert "<" not in call.error and "answers but is not an Ollama server" in call.error


def test_an_openai_only_server_at_an_ollama_url_is_named_as_such(standin):
    standin.config.api = "openai"
    with pytest.raises(NotAModelServer, match="answers but is not an Ollama server"):
        ask(backend_for(standin), SHORT)


def test_an_answer_cut_at_its_limit_is_asked_again_with_more_room(standin):
    standin.config.default_max_tokens = 4
    calls: list[ModelCall] = []
    asker = Asker(backend=backend_for(standin), record=calls.append, model="llama3.2", step_id="s")

    text = asker.text([{"role": "user", "content": "<document>one two three four five six seven</document>"}])

    assert text == "one two three four five six seven"
    assert [c.done_reason for c in calls] == ["length", "stop"]
    assert calls[1].options["num_predict"] >= 1024


def test_an_answer_cut_twice_fails_with_the_reason(standin):
    calls: list[ModelCall] = []
    asker = Asker(backend=backend_for(standin), record=calls.append, model="llama3.2", step_id="summary")

    with pytest.raises(AnswerCut, match="step 'summary' was cut at its length limit twice.*options.num_predict"):
        asker.text([{"role": "user", "content": "<document>[[standin:cut]] one two three four</document>"}])
    assert len(calls) == 2


def test_pull_streams_progress_and_the_model_is_listed_after(standin):
    standin.config.pull_steps = 3
    backend = backend_for(standin)

    lines = list(backend.pull("hf.co/bob/Tiny-GGUF:Q4_K_M"))

    layers = [line for line in lines if line.digest]
    assert layers and all(line.total for line in layers)
    assert layers[-1].completed == layers[-1].total and lines[-1].status == "success"
    assert "hf.co/bob/Tiny-GGUF:Q4_K_M" in backend.list_models()


def test_a_fresh_server_answers_the_version_probe(standin):
    assert backend_for(standin).version() == "0.12.6"
    with StandinServer(StandinConfig(models=["a"])) as other:
        assert backend_for(other).list_models() == ["a:latest"]


def test_a_call_sends_the_body_the_official_client_sends(standin):
    # The model calls go over httpcore without the client's layers (ollama_chat.py): same JSON all the same.
    standin.config.update({"models": ["llama3.2"], "thinking": ["qwen3"], "vision": ["qwen3"]})
    schema = {"type": "object", "properties": {"label": {"enum": ["a", "b"]}}}
    messages = [
        {"role": "system", "content": "Be brief. ünïcode"},
        {"role": "user", "content": SHORT, "images": ["aGVsbG8="]},
        {"role": "assistant", "content": ""},  # an empty answer quoted in a re-ask
        {"role": "user", "content": "Again."},
    ]
    backend = backend_for(standin, keep_alive="30m")
    backend.chat(ModelCall(model="qwen3", messages=messages, options={"num_ctx": 4096}, format=schema), think=False)
    official = ollama.Client(host=standin.url, timeout=10).chat(
        model="qwen3", messages=messages, options={"num_ctx": 4096}, format=schema, think=False, keep_alive="30m",
        stream=True,
    )  # fmt: skip
    list(official)

    ours, theirs = (r["body"] for r in standin.recorded())
    assert ours == theirs


def test_a_redirected_call_is_followed_as_the_official_client_follows_it(standin):
    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802  (the handler's name)
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(307)
            self.send_header("Location", f"{standin.url}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Redirect) as front:
        threading.Thread(target=front.serve_forever, daemon=True).start()
        try:
            config = ServerConfig(name="front", kind="ollama", url=f"http://127.0.0.1:{front.server_port}")
            call = OllamaBackend(config, timeout=10).chat(
                ModelCall(model="llama3.2", messages=[{"role": "user", "content": SHORT}], options={"num_ctx": 2048})
            )
        finally:
            front.shutdown()

    assert call.answer and call.done_reason == "stop"
    assert [r["path"] for r in standin.recorded()] == ["/api/chat"]


def test_a_proxy_set_in_the_environment_is_used_for_calls(standin, monkeypatch):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed.getsockname()[1]}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    call = ModelCall(model="llama3.2", messages=[{"role": "user", "content": SHORT}], options={"num_ctx": 2048})

    with pytest.raises(ModelUnavailable, match="is unreachable"):  # the proxy is, not the server
        backend_for(standin).chat(call)
    assert standin.recorded() == []


class _OneAnswerThenHangUp(BaseHTTPRequestHandler):
    """Answers a chat in two streamed lines, then closes the connection without having said it would."""

    protocol_version = "HTTP/1.1"  # keep-alive unless told otherwise: the client keeps the connection
    connections = 0

    def setup(self) -> None:
        type(self).connections += 1
        super().setup()

    def do_POST(self) -> None:  # noqa: N802  (the handler's name)
        self.rfile.read(int(self.headers["Content-Length"]))
        lines = [
            {"model": "llama3.2", "message": {"role": "assistant", "content": "garden"}, "done": False},
            {"model": "llama3.2", "message": {"role": "assistant", "content": ""}, "done": True,
             "done_reason": "stop", "eval_count": 1},
        ]  # fmt: skip
        data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True  # as a server that times idle connections out does, a moment later

    def log_message(self, *args: object) -> None:
        pass


class _CountsClosed(ThreadingHTTPServer):
    closed = 0

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        super().shutdown_request(request)
        type(self).closed += 1


def test_a_connection_the_server_closed_while_idle_is_not_used_again():
    _OneAnswerThenHangUp.connections = _CountsClosed.closed = 0  # counted afresh, however often this runs
    with _CountsClosed(("127.0.0.1", 0), _OneAnswerThenHangUp) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            config = ServerConfig(name="brief", kind="ollama", url=f"http://127.0.0.1:{server.server_port}")
            backend = OllamaBackend(config, timeout=10)
            first = backend.chat(ModelCall(model="llama3.2", messages=[{"role": "user", "content": SHORT}],
                                           options={"num_ctx": 2048}))  # fmt: skip
            wait_for(lambda: _CountsClosed.closed == 1, timeout=5, what="the server to close the first connection")
            second = backend.chat(ModelCall(model="llama3.2", messages=[{"role": "user", "content": SHORT}],
                                            options={"num_ctx": 2048}))  # fmt: skip
        finally:
            server.shutdown()

    assert first.answer == second.answer == "garden"
    assert _OneAnswerThenHangUp.connections == 2  # the second call on a connection of its own


def test_calls_one_after_another_share_one_connection(standin):
    backend = backend_for(standin)
    for _ in range(3):
        assert ask(backend, SHORT, num_ctx=2048).answer
    assert len({r["peer"] for r in standin.recorded() if r["path"] == "/api/chat"}) == 1


ANSWER_LINES = b"".join(json.dumps(line).encode() + b"\n" for line in [
    {"model": "llama3.2", "message": {"role": "assistant", "content": "garden"}, "done": False},
    {"model": "llama3.2", "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop"},
])  # fmt: skip


@contextlib.contextmanager
def scripted(answer: bytes, *, hang_up: bool, tls: ssl.SSLContext | None = None) -> Iterator[tuple[str, list]]:
    """A server on loopback that answers every request with `answer` as given (bytes on the wire), then
    hangs up or waits for the connection's next request; its URL and the connections it accepted."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def serve(connection: socket.socket) -> None:
        with connection:
            while True:
                received = b""
                while b"\r\n\r\n" not in received:
                    if not (data := connection.recv(65536)):
                        return
                    received += data
                head, _, content = received.partition(b"\r\n\r\n")
                length = int(re.search(rb"Content-Length: (\d+)", head, re.IGNORECASE).group(1))
                while len(content) < length:
                    content += connection.recv(65536)
                connection.sendall(answer)
                if hang_up:
                    return

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
                if tls is not None:
                    connection = tls.wrap_socket(connection, server_side=True)
            except OSError:  # the listener closed, or a client that refused the certificate
                if listener.fileno() == -1:
                    return
                continue
            accepted.append(connection)
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accept
        listener.close()


def test_an_answer_ended_by_the_servers_close_is_read_to_its_end():
    # HTTP/1.0 without a length: only the close says where the body ends; the connection is not kept.
    answer = b"HTTP/1.0 200 OK\r\nContent-Type: application/x-ndjson\r\n\r\n" + ANSWER_LINES
    with scripted(answer, hang_up=True) as (url, accepted):
        backend = OllamaBackend(ServerConfig(name="old", kind="ollama", url=url), timeout=10)
        answers = [ask(backend, SHORT, num_ctx=2048) for _ in range(2)]

    assert [(call.answer, call.done_reason) for call in answers] == [("garden", "stop")] * 2
    assert len(accepted) == 2


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 900\r\n\r\n" + ANSWER_LINES,  # less than it said
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n" % (len(ANSWER_LINES), ANSWER_LINES),
        b"SSH-2.0-OpenSSH_9.6\r\n",  # no HTTP at all
    ],
    ids=["short-body", "no-last-chunk", "not-http"],
)
def test_an_answer_cut_short_or_not_http_is_a_server_in_trouble_not_an_answer(answer):
    with scripted(answer, hang_up=True) as (url, _):
        backend = OllamaBackend(ServerConfig(name="cut", kind="ollama", url=url), timeout=10)
        with pytest.raises(ModelUnavailable, match="'cut' at .* is unreachable"):
            ask(backend, SHORT, num_ctx=2048)


def test_a_call_over_https_checks_the_certificate_and_keeps_its_connection(tmp_path):
    make_certificates(tmp_path)
    serving = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    serving.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(ANSWER_LINES), ANSWER_LINES)
    request = {"model": "llama3.2", "messages": [{"role": "user", "content": SHORT}]}
    with scripted(answer, hang_up=False, tls=serving) as (url, accepted):
        client, timeout = ollama.Client(host=url, timeout=10), httpx.Timeout(10)
        trusting = DirectChat(client, timeout, ssl.create_default_context(cafile=tmp_path / "ca.pem"))
        answers = [[part["message"]["content"] for part in trusting.parts(request)] for _ in range(2)]
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            list(DirectChat(client, timeout, ssl.create_default_context()).parts(request))
        trusting.close()

    assert answers == [["garden", ""]] * 2
    assert len(accepted) == 1  # both calls on one connection


def test_a_connection_with_bytes_after_the_answer_is_not_used_again():
    # An answer followed at once by another one nobody asked for: what comes next on it is unknowable.
    one = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(ANSWER_LINES), ANSWER_LINES)
    with scripted(one + one, hang_up=False) as (url, accepted):
        backend = OllamaBackend(ServerConfig(name="chatty", kind="ollama", url=url), timeout=10)
        answers = [ask(backend, SHORT, num_ctx=2048).answer for _ in range(2)]

    assert answers == ["garden", "garden"]
    assert len(accepted) == 2  # the second call on a connection of its own

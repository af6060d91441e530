"""An Ollama-compatible HTTP server on loopback, answering with the deterministic brain."""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import threading
import time
from functools import partialmethod
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from daemon.standin import brain
from daemon.standin.config import (
    BUSY_ERROR,
    SlotGate,
    StandinConfig,
    loopback_address,
    model_entry,
    pull_steps,
    show_payload,
)

log = logging.getLogger(__name__)

VERSION = "0.12.6"
JSON_TYPE = "application/json; charset=utf-8"
_UNLOAD = (0, "0", "0s", "0m")


class _HTTPServer(ThreadingHTTPServer):
    """Threaded server that sets TCP_NODELAY and can cut its keep-alive connections."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], standin: StandinServer, family: int) -> None:
        self.address_family = family
        self.standin = standin
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind without HTTPServer's getfqdn() lookup, which can stall."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept a connection with Nagle off (else keep-alive clients wait ~40 ms a request)."""
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._open_lock:
            self._open.add(conn)
        return conn, addr

    def close_request(self, request: Any) -> None:
        """Forget a finished connection."""
        with self._open_lock:
            self._open.discard(request)
        super().close_request(request)

    def drop_connections(self) -> None:
        """Cut every open connection, so a stopped server really looks gone to pooled clients."""
        with self._open_lock:
            conns, self._open = list(self._open), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log handler crashes quietly; they are the client's or the shutdown's doing."""
        log.debug("stand-in connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """Routes Ollama's endpoints and the `/_standin/*` control endpoints."""

    protocol_version = "HTTP/1.1"
    server_version = "ollama-standin"
    sys_version = ""
    server: _HTTPServer
    ROUTES = {
        ("GET", "/"): "_root",
        ("HEAD", "/"): "_root",
        ("GET", "/api/version"): "_version",
        ("HEAD", "/api/version"): "_version",
        ("GET", "/api/tags"): "_tags",
        ("GET", "/api/ps"): "_ps",
        ("POST", "/api/show"): "_show",
        ("POST", "/api/chat"): "_chat",
        ("POST", "/api/generate"): "_generate",
        ("POST", "/api/pull"): "_pull",
        ("GET", "/_standin/requests"): "_requests",
        ("GET", "/_standin/config"): "_get_config",
        ("POST", "/_standin/config"): "_set_config",
        ("POST", "/_standin/reset"): "_reset",
    }

    def do_GET(self) -> None:
        """Every method goes through the route table."""
        self.started_ns = time.monotonic_ns()
        self.sent = False
        self.body = self._read_body()
        name = self.ROUTES.get((self.command, self.path.split("?", 1)[0]))
        try:
            if name is None:
                self._send(404, b"404 page not found", "text/plain")
            else:
                getattr(self, name)()
        except OSError:
            self.close_connection = True
        except Exception as exc:  # a stand-in bug should answer 500, like a server would
            log.exception("stand-in handler failed")
            self.close_connection = True
            if not self.sent:
                self._error(500, f"stand-in error: {exc}")

    do_POST = do_HEAD = do_DELETE = do_PUT = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the access log out of test output."""
        log.debug("stand-in: " + format, *args)

    @property
    def standin(self) -> StandinServer:
        """The StandinServer this connection belongs to."""
        return self.server.standin

    # --- plumbing ---------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():
                pass  # trailers
            return b"".join(parts)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _json_body(self) -> dict[str, Any] | None:
        if not self.body.strip():
            return self._error(400, "missing request body")
        try:
            data = json.loads(self.body)
        except ValueError as exc:
            return self._error(400, _go_json_error(self.body, exc))
        if not isinstance(data, dict):
            kind = "array" if isinstance(data, list) else type(data).__name__
            message = f"json: cannot unmarshal {kind} into Go value of type api.Request"
            return self._error(400, message)
        return data

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.sent = True
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), JSON_TYPE)

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    def _stream(self, chunks: list[Any], delay: float = 0.0) -> None:
        """Send NDJSON chunks (dicts, or callables making one when due), pausing before each."""
        for chunk in chunks:
            self.standin.pause(delay)
            if not self.sent:
                self.sent = True
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
            data = json.dumps(chunk() if callable(chunk) else chunk).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.write(b"0\r\n\r\n")

    # --- Ollama endpoints ---------------------------------------------------------------------

    def _root(self) -> None:
        self._send(200, b"Ollama is running", "text/plain; charset=utf-8")

    def _version(self) -> None:
        self._json(200, {"version": VERSION})

    def _tags(self) -> None:
        self._json(200, {"models": [model_entry(m) for m in self.standin.config.installed()]})

    def _ps(self) -> None:
        self._json(200, {"models": []})

    def _show(self) -> None:
        if (body := self._json_body()) is None:
            return
        model = body.get("model") or body.get("name")
        if not model:
            return self._error(400, "model is required")
        if not self.standin.config.knows(model):
            return self._error(404, f"model '{model}' not found")
        self._json(200, show_payload(model, self.standin.config))

    def _pull(self) -> None:
        if (body := self._json_body()) is None:
            return
        model = body.get("model") or body.get("name")
        if not model:
            return self._error(400, "model is required")
        steps = pull_steps(model)
        self.standin.config.add_model(model)
        if body.get("stream") is False:
            return self._json(200, {"status": "success"})
        self._stream(steps)

    def _complete(self, kind: str) -> None:
        if (body := self._json_body()) is None:
            return
        standin = self.standin
        standin.record(self.path, body)
        if failure := standin.config.take_failure():
            return self._send(failure[0], failure[1], JSON_TYPE)
        if problem := brain.problem(kind, body, standin.config):
            return self._error(*problem)
        messages = brain.messages_of(kind, body)
        if (kind == "chat" and not messages) or (kind == "generate" and not body.get("prompt")):
            reason = "unload" if body.get("keep_alive") in _UNLOAD else "load"
            loaded = brain.frame(kind, body, "", None, True)
            return self._json(200, loaded | {"done_reason": reason})
        request = standin.brain_request(body, messages)
        if not standin.gate.acquire():
            return self._error(503, BUSY_ERROR)
        try:
            latency = brain.latency_for(standin.config.latency, request.quirks)
            self._answer(kind, body, brain.respond(request), latency)
        finally:
            standin.gate.release()

    _chat = partialmethod(_complete, "chat")
    _generate = partialmethod(_complete, "generate")

    def _answer(self, kind: str, body: dict[str, Any], answer: brain.Answer, delay: float) -> None:
        def frame(text: str, thinking: str | None = None, done: bool = False) -> dict[str, Any]:
            return brain.frame(kind, body, text, thinking, done)

        if body.get("stream", True) is False:
            self.standin.pause(delay)
            final = frame(answer.content, answer.thinking, True)
            return self._json(200, final | self._counters(answer, delay))
        chunks: list[Any] = [frame("", piece) for piece in brain.pieces(answer.thinking)]
        chunks += [frame(piece) for piece in brain.pieces(answer.content)]
        chunks.append(lambda: frame("", None, True) | self._counters(answer, delay))
        self._stream(chunks, delay / len(chunks))

    def _counters(self, answer: brain.Answer, latency: float) -> dict[str, Any]:
        elapsed = time.monotonic_ns() - self.started_ns
        return {
            "done_reason": "stop",
            **brain.durations(latency, elapsed),
            "prompt_eval_count": answer.prompt_eval_count,
            "eval_count": answer.eval_count,
        }

    # --- control endpoints --------------------------------------------------------------------

    def _requests(self) -> None:
        self._json(200, self.standin.recorded())

    def _get_config(self) -> None:
        self._json(200, self.standin.config.snapshot())

    def _set_config(self) -> None:
        if (body := self._json_body()) is None:
            return
        try:
            self.standin.config.update(body)
        except (ValueError, TypeError) as exc:
            return self._error(400, str(exc))
        self._json(200, self.standin.config.snapshot())

    def _reset(self) -> None:
        self.standin.reset()
        self._json(200, {"status": "ok"})


class StandinServer:
    """An Ollama-compatible server on loopback: start() it and point `ollama.Client` at `.url`."""

    def __init__(
        self, config: StandinConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.host = loopback_address(host)
        self.port = port
        self.config = config or StandinConfig()
        self.requests: list[dict[str, Any]] = []
        self.gate = SlotGate(lambda: self.config)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. "http://127.0.0.1:11434"."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def calls_in_flight(self) -> int:
        """Answers being computed right now."""
        return self.gate.in_flight

    @property
    def max_in_flight(self) -> int:
        """Most answers computed at once since start or reset()."""
        return self.gate.max_in_flight

    def start(self) -> StandinServer:
        """Bind (the same port again after a stop) and serve on a background thread."""
        if self._httpd is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        httpd = _HTTPServer((self.host, self.port), self, family)
        self.port = httpd.server_address[1]
        self._stopping.clear()
        self.gate.set_closed(False)
        # A short poll interval keeps stop() fast; serve_forever only checks for shutdown then.
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True,
            name=f"standin-{self.port}",
        )
        self._httpd = httpd
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and cut open connections; idempotent."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self.gate.set_closed(True)
        httpd.shutdown()
        httpd.server_close()
        httpd.drop_connections()
        self._stopping.set()  # last: woken answers must find their connections already cut
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> StandinServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget recorded requests, observed concurrency and prompts seen by "garbage_once"."""
        with self._lock:
            self.requests.clear()
        self.gate.reset_peak()
        with self.config.lock:
            self.config.seen_prompts.clear()

    def record(self, path: str, body: dict[str, Any]) -> None:
        """Remember a chat/generate request body."""
        with self._lock:
            self.requests.append({"path": path, "time": time.time(), "body": body})

    def recorded(self) -> list[dict[str, Any]]:
        """A copy of the recorded requests."""
        with self._lock:
            return list(self.requests)

    def brain_request(self, body: dict[str, Any], messages: list[dict[str, Any]]) -> brain.Request:
        """What the brain needs to answer a body; notes the prompt for "garbage_once"."""
        config = self.config
        quirks = brain.quirks_for(messages, set(config.quirks))
        first = "garbage_once" not in quirks or config.first_sighting(brain.prompt_key(messages))
        return brain.request_for(body, messages, config, quirks, first)

    def pause(self, seconds: float) -> None:
        """Sleep like a model computing, but wake at once when the server stops."""
        if seconds > 0:
            self._stopping.wait(seconds)


def _go_json_error(raw: bytes, exc: ValueError) -> str:
    """A Go encoding/json style message for a malformed body."""
    position = getattr(exc, "pos", None)
    text = raw.decode("utf-8", "replace")
    if position is None or position >= len(text.rstrip()):
        return "unexpected EOF"
    return f"invalid character {text[position]!r} looking for beginning of value"

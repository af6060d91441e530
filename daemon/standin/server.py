"""The stand-in server: a real HTTP server on loopback that speaks Ollama's API, OpenAI's, or both.

`StandinServer(config, host="127.0.0.1", port=0, clock=time.time).start()` serves on a thread; point
`ollama.Client(host=server.url)` or `openai.OpenAI(base_url=server.url + "/v1")` at it. What tests read:
- `url`, `port`, `config` (the switches, see config.py; change them while it serves);
- `requests` / `recorded()`: every chat, generate and chat-completions body, with its path and time;
- `loaded`: the LoadTracker (loaded.py): `loaded.reloads(model)`, `loads(model)`, `options(model)`,
  `num_ctx_sent(model)`, `loaded()` (what /api/ps lists);
- `calls_in_flight`, `max_in_flight` (answers computed at once, now and at most);
- `reset()`: forget requests, the peak, prompts seen by "garbage_once", loads and reloads.
Control endpoints, for a stand-in in another process (always answered, whatever `api` or `impostor`):
GET /_standin/requests, GET and POST /_standin/config (JSON switches), POST /_standin/reset,
GET /_standin/loaded (the LoadTracker's snapshot: per model loaded, num_ctx, loads, reloads, options).
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Self

from daemon.standin import brain, impostor, ollama_api, openai_api
from daemon.standin.ask import UNLIMITED, Ask, Work
from daemon.standin.config import StandinConfig
from daemon.standin.gate import SlotGate
from daemon.standin.loaded import LoadTracker
from daemon.standin.plumbing import Exchange, HTTPServer, loopback_address


class StandinServer:
    """A model server on loopback: start() it and point a client at `.url`."""

    def __init__(
        self,
        config: StandinConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.host = loopback_address(host)
        self.port = port
        self.config = config or StandinConfig()
        self.clock = clock
        self.requests: list[dict[str, Any]] = []
        self.gate = SlotGate(lambda: self.config)
        self.loaded = LoadTracker(clock)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: HTTPServer | None = None
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

    def start(self) -> Self:
        """Bind (the same port again after a stop) and serve on a background thread."""
        if self._httpd is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        httpd = HTTPServer((self.host, self.port), self, family)
        self.port = httpd.server_address[1]
        self._stopping.clear()
        self.gate.set_closed(False)
        # A short poll interval keeps stop() fast; serve_forever only checks for shutdown then.
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True, name=f"standin-{self.port}"
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget recorded requests, the peak, prompts seen by "garbage_once", loads and reloads."""
        with self._lock:
            self.requests.clear()
        self.gate.reset_peak()
        self.loaded.reset()
        with self.config.lock:
            self.config.seen_prompts.clear()

    def record(self, path: str, body: dict[str, Any], peer: int) -> None:
        """Remember a model call's request body, and the client's port (one per connection it kept)."""
        with self._lock:
            self.requests.append({"path": path, "time": self.clock(), "body": body, "peer": peer})

    def recorded(self) -> list[dict[str, Any]]:
        """A copy of the recorded requests."""
        with self._lock:
            return list(self.requests)

    def next_id(self) -> int:
        """A number for a response id, unique in this server."""
        return next(self._ids)

    def quirks_of(self, messages: list[dict[str, Any]]) -> frozenset[str]:
        """The quirks of a request: the configured ones and the prompt's markers."""
        return brain.quirks_for(messages, set(self.config.quirks))

    @contextmanager
    def answering(self, ask: Ask) -> Iterator[Work | None]:
        """Hold an answer slot while the answer is computed and sent; None when the queue is full."""
        if not self.gate.acquire():
            yield None
            return
        try:
            config, quirks = self.config, self.quirks_of(ask.messages)
            event = self.loaded.use(ask.model, ask.options, ask.keep_alive)
            load_seconds = max(0.0, config.load_latency) if event != "warm" else 0.0
            self.pause(load_seconds)
            latency, begun = brain.latency_for(config.latency_of(ask.model), quirks), time.monotonic()
            yield Work(brain.respond(self._brain_request(ask, quirks)), latency, load_seconds, quirks, begun)
        finally:
            self.gate.release()

    def pause(self, seconds: float) -> None:
        """Sleep like a model computing, but wake at once when the server stops."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def dispatch(self, exchange: Exchange) -> None:
        """Send a request to its API, or answer as the control endpoints or an impostor."""
        route, config = exchange.route, self.config
        if route.startswith("/_standin/"):
            return self._control(exchange)
        if config.impostor:
            return impostor.answer(exchange, config.impostor)
        if route == "/v1" or route.startswith("/v1/"):
            if config.api == "ollama":
                return exchange.send(404, b"404 page not found", "text/plain")
            return openai_api.handle(exchange)
        if config.api == "openai":
            return openai_api.not_found(exchange)
        return ollama_api.handle(exchange)

    def _brain_request(self, ask: Ask, quirks: frozenset[str]) -> brain.Request:
        config, messages = self.config, ask.messages
        first = "garbage_once" not in quirks or config.first_sighting(brain.prompt_key(messages))
        max_tokens = config.default_max_tokens if ask.max_tokens is None else ask.max_tokens
        return brain.Request(
            messages=messages,
            format=ask.format,
            num_ctx=int(ask.options.get("num_ctx") or config.num_ctx_default(ask.model)),
            quirks=quirks,
            think=config.is_thinking(ask.model) and ask.think is not False,
            first_time=first,
            weak=config.is_weak(ask.model),
            max_tokens=None if max_tokens == UNLIMITED else max_tokens,
        )

    def _control(self, exchange: Exchange) -> None:
        action = (exchange.command, exchange.route.removeprefix("/_standin/"))
        if action == ("GET", "requests"):
            return exchange.send_json(200, self.recorded())
        if action == ("GET", "loaded"):
            return exchange.send_json(200, self.loaded.snapshot())
        if action == ("GET", "config"):
            return exchange.send_json(200, self.config.snapshot())
        if action == ("POST", "reset"):
            self.reset()
            return exchange.send_json(200, {"status": "ok"})
        if action != ("POST", "config"):
            return exchange.send(404, b"404 page not found", "text/plain")
        body, reason = exchange.parse_json()
        if body is None:
            return exchange.send_json(400, {"error": reason})
        try:
            self.config.update(body)
        except (ValueError, TypeError) as exc:
            return exchange.send_json(400, {"error": str(exc)})
        exchange.send_json(200, self.config.snapshot())

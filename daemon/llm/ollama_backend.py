"""The Ollama backend, over the official `ollama` client: `/api/*`, never Ollama's `/v1`.

The model calls themselves send the client's request over `http.client` without the client's layers
(ollama_chat.py says what that keeps and what it saves); listings, `show`, `ps` and pulls use the client.

What it does that a naive client does not (each a real complaint in other projects' trackers):
- one `num_ctx` per model for the life of the process: the workflow's `options.num_ctx`, else
  `context_tokens` capped by the model's own context, sent with every call (Ollama reloads a model
  whenever num_ctx changes, and "no num_ctx" counts as a value of its own);
- `keep_alive` on every call, so a model is not unloaded between sparse runs;
- `think` only for models whose capabilities include "thinking";
- answers are streamed, so the timeout is one of silence: a slow but steady model is never cut off,
  a server that stops sending is caught after `timeout` seconds without a token;
- one client per server for the life of the process, shared by the workers, its calls on a
  keep-alive connection for each thread that calls (a profile of the overhead scenario shows no
  connect after the first calls). Making the client at
  the first call instead, to import `ollama` and `httpx` after "ready", cost that first call about
  a second on a loaded machine and bought no start-up time that could be told from the noise
  (BENCHMARKS.md, issue 17).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import ollama

from daemon.domain import ModelCall
from daemon.errors import ModelError, ModelMissing, ModelTimeout, ModelUnavailable, UsageError
from daemon.llm import wire
from daemon.llm.answers import split_thinking
from daemon.llm.base import LoadedModel, ModelBackend, ModelInfo, PullProgress
from daemon.llm.ollama_chat import DirectChat
from daemon.settings import ServerConfig

TITLE = "an Ollama server"


class OllamaBackend(ModelBackend):
    """Talks to one Ollama server with explicit timeouts."""

    def __init__(
        self,
        server: ServerConfig,
        *,
        timeout: float = 300.0,
        connect_timeout: float = 5.0,
        keep_alive: int | str | None = None,
        context_tokens: int = 8192,
        api_key: str | None = None,
    ) -> None:
        self.server, self.url = server, server.url
        self.keep_alive, self.context_tokens = keep_alive, context_tokens
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
        limits, verify = httpx.Timeout(timeout, connect=connect_timeout), wire.tls_context()
        self._client = ollama.Client(host=self.url, timeout=limits, headers=headers, verify=verify)  # pulls
        self._chat = DirectChat(self._client, limits, verify)  # answers: the client's request, fewer layers
        # Listings and the health probe answer at once or the server is in trouble: a short timeout.
        self._admin = ollama.Client(host=self.url, timeout=connect_timeout * 2, headers=headers, verify=verify)
        self._probe = httpx.Client(base_url=self.url, timeout=connect_timeout * 2, headers=headers, verify=verify)
        self._lock = threading.Lock()
        self._info: dict[str, ModelInfo] = {}  # /api/show per model, once per process
        self._num_ctx: dict[str, int] = {}  # the one num_ctx of each model, decided once

    # -- chat -------------------------------------------------------------------------------
    def chat(self, call: ModelCall, *, think: bool | None = None) -> ModelCall:
        call.started_at = datetime.now(UTC)
        start = time.perf_counter()
        try:
            call.options = self.options_for(call.model, call.options)
            parts = self._chat.parts({
                "model": call.model,
                "messages": call.messages,
                "format": call.format,
                "options": call.options,
                "think": think if think is not None and self._thinks(call.model) else None,
                "keep_alive": self.keep_alive,
            })  # fmt: skip
            _gather(call, parts, f"the model server '{self.server.name}' at {self.url}")
        except Exception as exc:
            call.wall_ms = (time.perf_counter() - start) * 1000
            error = self.translate(exc, call.model)
            call.error = str(error)
            raise error from exc
        call.wall_ms = (time.perf_counter() - start) * 1000
        return call

    def options_for(self, model: str, options: dict[str, Any]) -> dict[str, Any]:
        """The options sent: the workflow's, with the model's one num_ctx unless the workflow set one."""
        if options.get("num_ctx"):
            return dict(options)
        return {**options, "num_ctx": self._decided_num_ctx(model)}

    def window(self, model: str, options: dict[str, Any]) -> int:
        sent = int(self.options_for(model, options)["num_ctx"])
        own = self.info(model).context_length
        return min(sent, own) if own else sent  # Ollama caps num_ctx at the model's own context

    def _decided_num_ctx(self, model: str) -> int:
        with self._lock:
            decided = self._num_ctx.get(model)
        if decided is None:
            own = self.info(model).context_length
            decided = min(own, self.context_tokens) if own else self.context_tokens
            with self._lock:
                decided = self._num_ctx.setdefault(model, decided)  # the first decision stands
        return decided

    def _thinks(self, model: str) -> bool:
        return "thinking" in (self.info(model).capabilities or ())

    # -- what the server has ----------------------------------------------------------------
    def list_models(self) -> list[str]:
        return [m.model for m in self._listing().models if m.model]

    def _listing(self) -> Any:
        try:
            listing = self._admin.list()
        except Exception as exc:
            raise self.translate(exc, "") from exc
        if not isinstance(getattr(listing, "models", None), list | tuple):
            raise wire.not_a_server(self.server, TITLE, "GET /api/tags gave no model list")
        return listing

    def info(self, model: str) -> ModelInfo:
        with self._lock:
            known = self._info.get(model)
        if known is not None:
            return known
        try:
            shown = self._admin.show(model)
        except Exception as exc:
            raise self.translate(exc, model) from exc
        context = None
        for key, value in (shown.modelinfo or {}).items():
            if key.endswith(".context_length") and isinstance(value, int):
                context = value
        details = shown.details
        info = ModelInfo(
            model,
            context,
            frozenset(shown.capabilities or ()),
            parameter_size=getattr(details, "parameter_size", None),
            quantisation=getattr(details, "quantization_level", None),
            family=getattr(details, "family", None),
        )
        with self._lock:
            self._info[model] = info
        return info

    def catalog(self) -> list[ModelInfo]:
        found = []
        for entry in self._listing().models:
            shown = self.info(entry.model)
            size = int(entry.size or 0) or None
            found.append(dataclasses.replace(shown, size=size))
        return found

    def loaded(self) -> list[LoadedModel]:
        try:
            running = self._admin.ps()
        except Exception as exc:
            raise self.translate(exc, "") from exc
        return [
            LoadedModel(m.model or m.name or "?", m.context_length, _int(m.size), _int(m.size_vram), m.expires_at)
            for m in running.models
        ]

    def version(self) -> str | None:
        try:
            answer = self._probe.get("/api/version")
        except httpx.HTTPError as exc:
            raise self.translate(exc, "") from exc
        try:
            version = answer.json().get("version") if answer.status_code == 200 else None
        except (ValueError, AttributeError):
            version = None
        if not isinstance(version, str):
            what = f"GET /api/version gave {wire.body_kind(answer.status_code, answer.text)}"
            raise wire.not_a_server(self.server, TITLE, what)
        return version

    def pull(self, model: str) -> Iterator[PullProgress]:
        try:
            for line in self._client.pull(model, stream=True):
                yield PullProgress(line.status or "", line.digest, _int(line.total), _int(line.completed))
        except ollama.ResponseError as exc:
            if exc.status_code == 400:
                raise UsageError(f"'{model}' is not a model name Ollama accepts ({wire.clean(exc.error)})") from exc
            raise ModelError(f"pulling {model} onto '{self.server.name}' failed: {wire.clean(exc.error)}") from exc
        except Exception as exc:
            raise self.translate(exc, model) from exc

    def close(self) -> None:
        for client in (self._chat, self._client, self._admin, self._probe):
            client.close()

    # -- errors -----------------------------------------------------------------------------
    def translate(self, exc: Exception, model: str) -> ModelError:
        """The gristmill error for what the client raised; never a web page in the message."""
        name = self.server.name
        if isinstance(exc, ModelError):
            return exc
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            return ModelTimeout(f"the model server '{name}' at {self.url} sent nothing for too long", self.url)
        if isinstance(exc, ConnectionError | httpx.TransportError):
            reason = "took too long to connect" if isinstance(exc, httpx.ConnectTimeout) else "is unreachable"
            return ModelUnavailable(f"the model server '{name}' at {self.url} {reason} ({_short(exc)})", self.url)
        if isinstance(exc, ValueError):  # a body that is not JSON (the client's json.loads)
            return wire.not_a_server(self.server, TITLE, "it answered with a body that is not JSON")
        if isinstance(exc, ollama.ResponseError):
            return self._refusal(exc, model)
        return ModelError(f"talking to the model server '{name}' failed: {_short(exc)}")

    def _refusal(self, exc: ollama.ResponseError, model: str) -> ModelError:
        status, said, name = exc.status_code, wire.clean(exc.error), self.server.name
        if wire.looks_like_html(str(exc.error)) or status in (405, 501) or not isinstance(exc.error, str):
            return wire.not_a_server(self.server, TITLE, f"it answered {wire.body_kind(status, str(exc.error))}")
        if status == 404 and model:
            try:
                self.version()  # an OpenAI-only server or a web server 404s too: say what it is instead
            except ModelError as other:
                return other
            return ModelMissing(model, self.url, where=f"the model server '{name}' ({self.url})",
                                fix=f"run: gristmill pull {model} --server {name}")  # fmt: skip
        if status == 500:
            return ModelError(
                f"the model server '{name}' could not run model '{model}' ({said}); it may need more memory than "
                "the machine has (choose a smaller model or quantisation) or its file is damaged (pull it again)"
            )
        if status >= 500 or status == 429:
            return ModelUnavailable(f"the model server '{name}' at {self.url} answered {status}: {said}", self.url)
        if status == -1:  # an error line in the middle of a streamed answer
            return ModelError(f"the model server '{name}' stopped answering with model '{model}': {said}")
        return ModelError(f"the model server '{name}' refused the request ({status}: {said})")


def _gather(call: ModelCall, parts: Iterator[dict[str, Any]], where: str) -> None:
    """Fill `call` from a streamed answer (its parts as Ollama sends them): the pieces of content and thinking,
    then the counters."""
    content: list[str] = []
    thoughts: list[str] = []
    last: dict[str, Any] = {}
    for part in parts:
        message = part.get("message") or {}
        content.append(message.get("content") or "")
        thoughts.append(message.get("thinking") or "")
        last = part
    if not last.get("done"):
        raise ModelUnavailable(f"{where} closed the answer before it was complete")
    text = "".join(content)
    _, inline_thoughts = split_thinking(text)
    call.answer = text
    call.thinking = "".join(thoughts) or inline_thoughts
    call.done_reason = last.get("done_reason")
    call.prompt_tokens = _int(last.get("prompt_eval_count"))
    call.completion_tokens = _int(last.get("eval_count"))
    call.total_duration_ns = _int(last.get("total_duration"))
    call.load_duration_ns = _int(last.get("load_duration"))
    call.prompt_eval_duration_ns = _int(last.get("prompt_eval_duration"))
    call.eval_duration_ns = _int(last.get("eval_duration"))


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _short(exc: Exception) -> str:
    return wire.clean(str(exc) or type(exc).__name__)

"""The Ollama backend, over the official `ollama` client."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
import ollama

from daemon.domain import ModelCall
from daemon.errors import ModelError, ModelMissing, ModelUnavailable
from daemon.llm.answers import split_thinking
from daemon.llm.base import ModelBackend, ModelInfo

# Errors that mean "the server is not there or not able right now": wait, do not use an attempt.
_TRANSPORT_ERRORS = (ConnectionError, httpx.TransportError)


class OllamaBackend(ModelBackend):
    """Talks to one Ollama server with explicit timeouts."""

    def __init__(self, url: str, *, timeout: float = 300.0, connect_timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self._client = ollama.Client(
            host=self.url, timeout=httpx.Timeout(timeout, connect=connect_timeout)
        )
        self._info: dict[str, ModelInfo] = {}  # /api/show per model, once per process

    def chat(self, call: ModelCall, *, think: bool | None = None) -> ModelCall:
        call.started_at = datetime.now(UTC)
        start = time.perf_counter()
        try:
            response = self._client.chat(
                model=call.model,
                messages=call.messages,
                format=call.format,
                options=call.options or None,
                think=think,
                stream=False,
            )
        except Exception as exc:
            call.wall_ms = (time.perf_counter() - start) * 1000
            error = self._translate(exc, call.model)
            call.error = str(error)
            raise error from exc
        call.wall_ms = (time.perf_counter() - start) * 1000
        _fill(call, response)
        return call

    def list_models(self) -> list[str]:
        try:
            listing = self._client.list()
        except Exception as exc:
            raise self._translate(exc, "") from exc
        return [m.model for m in listing.models if m.model]

    def info(self, model: str) -> ModelInfo:
        if model in self._info:
            return self._info[model]
        try:
            shown = self._client.show(model)
        except Exception as exc:
            raise self._translate(exc, model) from exc
        context = None
        for key, value in (shown.modelinfo or {}).items():
            if key.endswith(".context_length") and isinstance(value, int):
                context = value
        self._info[model] = ModelInfo(model, context, frozenset(shown.capabilities or ()))
        return self._info[model]

    def _translate(self, exc: Exception, model: str) -> ModelError:
        if isinstance(exc, ModelError):
            return exc
        if isinstance(exc, _TRANSPORT_ERRORS):
            kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "is unreachable"
            return ModelUnavailable(f"the model server at {self.url} {kind} ({_short(exc)})", self.url)
        if isinstance(exc, ollama.ResponseError):
            if exc.status_code == 404 and model:
                return ModelMissing(model, self.url)
            if exc.status_code >= 500 or exc.status_code == 429:
                return ModelUnavailable(
                    f"the model server at {self.url} answered {exc.status_code}: {exc.error}", self.url
                )
            return ModelError(f"the model server refused the request ({exc.status_code}: {exc.error})")
        return ModelError(f"talking to the model server failed: {_short(exc)}")


def _fill(call: ModelCall, response: Any) -> None:
    message = response.message
    content = message.content or ""
    _, inline_thoughts = split_thinking(content)
    call.answer = content
    call.thinking = message.thinking or inline_thoughts
    call.prompt_tokens = response.prompt_eval_count
    call.completion_tokens = response.eval_count
    call.total_duration_ns = response.total_duration
    call.load_duration_ns = response.load_duration
    call.prompt_eval_duration_ns = response.prompt_eval_duration
    call.eval_duration_ns = response.eval_duration


def _short(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]

"""The OpenAI-compatible backend (LM Studio, llama.cpp's llama-server, vLLM), over the official `openai` client.

- The client's own retries are off (`max_retries=0`) and its timeouts explicit: gristmill owns both.
- Answers are streamed (SSE), so the model timeout is one of silence, as with Ollama; `usage` comes
  from the last event (`stream_options.include_usage`; a server that refuses that option is asked
  without it from then on, and its calls carry no token counts).
- Structured answers step down from `json_schema` as the server demands (structured.py).
- Reasoning (`reasoning_content`, or `reasoning`) is kept apart; `<think>` in the content is left for
  the asker, which strips it from every answer.
- `finish_reason` is recorded as the call's `done_reason` ("length": the answer was cut).
- The client hands back a `str` for a 200 that is no JSON, and an empty stream for a web page:
  result types are checked, and such a URL is "not an OpenAI-compatible server".
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import openai
from openai.types.chat import ChatCompletionChunk

from daemon.domain import ModelCall
from daemon.errors import ModelError, ModelMissing, ModelTimeout, ModelUnavailable
from daemon.llm import wire
from daemon.llm.answers import split_thinking
from daemon.llm.base import ModelBackend, ModelInfo, listed
from daemon.llm.structured import Structured, StructuredWays, is_format_refusal
from daemon.settings import ServerConfig

log = logging.getLogger("gristmill")
TITLE = "an OpenAI-compatible server"
# Workflow options an OpenAI-compatible server takes, by their names there; the rest are Ollama's own.
_OPTIONS = {"temperature": "temperature", "top_p": "top_p", "seed": "seed", "stop": "stop",
            "presence_penalty": "presence_penalty", "frequency_penalty": "frequency_penalty",
            "num_predict": "max_tokens"}  # fmt: skip
_CONTEXT_KEYS = ("max_model_len", "context_length", "loaded_context_length", "max_context_length")


class OpenAIBackend(ModelBackend):
    """Talks to one OpenAI-compatible server (`url` ends in `/v1`)."""

    def __init__(
        self,
        server: ServerConfig,
        *,
        timeout: float = 300.0,
        connect_timeout: float = 5.0,
        context_tokens: int = 8192,
        api_key: str | None = None,
    ) -> None:
        self.server, self.url, self.context_tokens = server, server.url, context_tokens
        key = api_key or "no-key"  # servers without keys ignore it; the client insists on one
        limits = openai.Timeout(timeout, connect=connect_timeout)
        verify = wire.tls_context()
        self._client = openai.OpenAI(base_url=self.url, api_key=key, max_retries=0, timeout=limits,
                                     http_client=openai.DefaultHttpxClient(verify=verify))  # fmt: skip
        self._admin = openai.OpenAI(base_url=self.url, api_key=key, max_retries=0, timeout=connect_timeout * 2,
                                    http_client=openai.DefaultHttpxClient(verify=verify))  # fmt: skip
        self.ways = StructuredWays(server.name)
        self._lock = threading.Lock()
        self._entries: dict[str, dict[str, Any]] = {}  # /v1/models entries by id
        self._usage_option = True  # whether the server takes stream_options.include_usage

    # -- chat -------------------------------------------------------------------------------
    def chat(self, call: ModelCall, *, think: bool | None = None) -> ModelCall:
        call.started_at = datetime.now(UTC)
        start = time.perf_counter()
        way = self.ways.current if call.format else None
        while True:
            try:
                self._stream(call, way, start)
                return call
            except openai.APIStatusError as exc:
                if self._drop_usage_option(exc):
                    continue
                weaker = self._step_down(way, exc)
                if weaker is not None:
                    way = weaker
                    continue
                error = self.translate(exc, call.model)
            except Exception as exc:
                error = self.translate(exc, call.model)
            call.wall_ms = (time.perf_counter() - start) * 1000
            call.error = str(error)
            raise error

    def _drop_usage_option(self, exc: openai.APIStatusError) -> bool:
        """True when the server refused stream_options: asked without it from now on, logged once."""
        with self._lock:
            if not (self._usage_option and exc.status_code == 400 and "stream_options" in _said(exc)):
                return False
            self._usage_option = False
        log.warning("the model server '%s' refuses stream_options; its calls carry no token counts", self.server.name)
        return True

    def _step_down(self, way: Structured | None, exc: openai.APIStatusError) -> Structured | None:
        """After a refusal of how the answer was asked for, the weaker way to try now; else None."""
        said = _said(exc)
        if way is None or not is_format_refusal(exc.status_code, said):
            return None
        return self.ways.refused(way, wire.clean(said))

    def _stream(self, call: ModelCall, way: Structured | None, start: float) -> None:
        messages = [_openai_message(m) for m in call.messages]
        extra: dict[str, Any] = {}
        if way is not None and call.format:
            messages = way.messages(messages, call.format)
            if (response_format := way.response_format(call.format)) is not None:
                extra["response_format"] = response_format
        if self._usage_option:
            extra["stream_options"] = {"include_usage": True}
        sent = {_OPTIONS[k]: v for k, v in call.options.items() if k in _OPTIONS}
        stream = self._client.chat.completions.create(model=call.model, messages=messages, stream=True, **sent, **extra)
        _gather(call, stream, start, lambda what: wire.not_a_server(self.server, TITLE, what))

    def window(self, model: str, options: dict[str, Any]) -> int:
        # num_ctx cannot be sent here; a workflow's num_ctx says what the server was started with.
        if options.get("num_ctx"):
            return int(options["num_ctx"])
        return self.info(model).context_length or self.context_tokens

    # -- what the server has ----------------------------------------------------------------
    def list_models(self) -> list[str]:
        try:
            page = self._admin.models.list()
            entries = {m.id: m.to_dict() for m in page.data}
        except Exception as exc:
            raise self.translate(exc, "") from exc
        with self._lock:
            self._entries = entries
        return list(entries)

    def info(self, model: str) -> ModelInfo:
        with self._lock:
            entry = self._entries.get(model) or self._entries.get(f"{model}:latest")
        if entry is None:
            if not listed(model, self.list_models()):
                raise self._missing(model)
            with self._lock:
                entry = self._entries.get(model) or self._entries.get(f"{model}:latest") or {}
        context = next((entry[k] for k in _CONTEXT_KEYS if isinstance(entry.get(k), int)), None)
        return ModelInfo(str(entry.get("id", model)), context, None)

    def version(self) -> str | None:
        self.list_models()  # the only probe every such server has; there is no version endpoint
        return None

    def close(self) -> None:
        self._client.close()
        self._admin.close()

    # -- errors -----------------------------------------------------------------------------
    def translate(self, exc: Exception, model: str) -> ModelError:
        """The gristmill error for what the client raised; never a web page in the message."""
        name = self.server.name
        if isinstance(exc, ModelError):
            return exc
        if isinstance(exc, openai.APITimeoutError):
            if "ConnectTimeout" in type(exc.__cause__).__name__:
                return ModelUnavailable(f"the model server '{name}' at {self.url} took too long to connect", self.url)
            return ModelTimeout(f"the model server '{name}' at {self.url} sent nothing for too long", self.url)
        if isinstance(exc, openai.APIConnectionError):
            return ModelUnavailable(f"the model server '{name}' at {self.url} is unreachable ({exc.message})", self.url)
        if isinstance(exc, openai.APIStatusError):
            return self._refusal(exc, model)
        if isinstance(exc, ValueError | AttributeError | TypeError):  # no JSON, or not the shape the client expects
            return wire.not_a_server(self.server, TITLE, "it answered with something that is not the OpenAI API")
        return ModelError(f"talking to the model server '{name}' failed: {wire.clean(exc)}")

    def _refusal(self, exc: openai.APIStatusError, model: str) -> ModelError:
        status, said, name = exc.status_code, wire.clean(_said(exc)), self.server.name
        text = exc.response.text if exc.response is not None else ""
        if wire.looks_like_html(text) or status in (405, 501):
            return wire.not_a_server(self.server, TITLE, f"it answered {wire.body_kind(status, text)}")
        if status == 404 and model:
            if exc.code == "model_not_found" or model in said:
                return self._missing(model)
            try:
                self.version()  # no such route: the URL is not an OpenAI-compatible API (no /v1?)
            except ModelError as other:
                return other
            return self._missing(model)
        if status in (401, 403):
            how = f"check {self.server.api_key_env}" if self.server.api_key_env else "set api_key_env for it"
            return ModelError(f"the model server '{name}' refused the API key ({status}: {said}); {how}")
        if status == 500:
            return ModelError(f"the model server '{name}' could not run model '{model}' ({said}); it may need "
                              "more memory than the machine has (choose a smaller model or quantisation)")  # fmt: skip
        if status >= 500 or status == 429:
            return ModelUnavailable(f"the model server '{name}' at {self.url} answered {status}: {said}", self.url)
        return ModelError(f"the model server '{name}' refused the request ({status}: {said})")

    def _missing(self, model: str) -> ModelMissing:
        return ModelMissing(
            model,
            self.url,
            where=f"the model server '{self.server.name}' ({self.url})",
            fix="load or download it in that server (LM Studio: lms get / lms load; llama-server: -m FILE; "
            "vLLM: --model)",
        )


def _gather(call: ModelCall, stream: Any, start: float, impostor: Any) -> None:
    """Fill `call` from the SSE stream: content, reasoning, finish reason, usage and timings."""
    content: list[str] = []
    reasoning: list[str] = []
    first_token: float | None = None
    events = 0
    for chunk in stream:
        if not isinstance(chunk, ChatCompletionChunk):
            raise impostor("its stream is not chat-completion chunks")
        events += 1
        if chunk.usage is not None:
            call.prompt_tokens, call.completion_tokens = chunk.usage.prompt_tokens, chunk.usage.completion_tokens
        for choice in chunk.choices:
            delta = choice.delta
            piece = delta.content or ""
            thought = getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None) or ""
            if (piece or thought) and first_token is None:
                first_token = time.perf_counter()
            content.append(piece)
            reasoning.append(str(thought))
            call.done_reason = choice.finish_reason or call.done_reason
    if events == 0:
        raise impostor("it answered a chat with no stream events")
    end = time.perf_counter()
    text = "".join(content)
    call.answer = text
    call.thinking = "".join(reasoning) or split_thinking(text)[1]
    call.wall_ms = (end - start) * 1000
    # No server durations here: measured ones (to the first token, then to the end) stand in for them.
    call.total_duration_ns = int((end - start) * 1e9)
    if first_token is not None:
        call.prompt_eval_duration_ns = int((first_token - start) * 1e9)
        call.eval_duration_ns = int((end - first_token) * 1e9)


def _openai_message(message: dict[str, Any]) -> dict[str, Any]:
    """A message in OpenAI's shape: Ollama-style `images` become `image_url` data-URL parts."""
    images = message.get("images")
    if not images:
        return {"role": message.get("role"), "content": message.get("content") or ""}
    parts: list[dict[str, Any]] = [{"type": "text", "text": message.get("content") or ""}]
    for image in images:
        data = image if isinstance(image, str) else base64.b64encode(bytes(image)).decode("ascii")
        parts.append({"type": "image_url", "image_url": {"url": f"data:{_mime(data)};base64,{data}"}})
    return {"role": message.get("role"), "content": parts}


def _mime(data: str) -> str:
    head = base64.b64decode(data[:32] + "=" * (-len(data[:32]) % 4), validate=False)
    for magic, mime in ((b"\x89PNG", "image/png"), (b"\xff\xd8", "image/jpeg"), (b"GIF8", "image/gif"),
                        (b"RIFF", "image/webp")):  # fmt: skip
        if head.startswith(magic):
            return mime
    return "image/png"


def _said(exc: openai.APIStatusError) -> str:
    """What the server said in an error: OpenAI's error message, LM Studio's bare string, or the body."""
    body = exc.body
    if isinstance(body, dict):
        return str(body.get("message") or body.get("error") or body)
    return str(body if body is not None else exc.message)

"""OpenAI's chat-completions API (/v1/*) over the same brain, as LM Studio, llama-server or vLLM serve it.

Endpoints: GET /v1/models ({"object": "list", "data": [{"id", "object": "model", "created",
"owned_by"}]}: ids are Ollama's "name:tag" when `api` is "both", the configured names with `api`
"openai"), GET /v1/models/{id}, POST /v1/chat/completions.
- Messages: `content` is a string or parts: {"type": "text"} and {"type": "image_url", "image_url":
  {"url": "data:image/png;base64,..."}} (images reach the brain as Ollama's `images`; only data URLs).
- `response_format`: none or {"type": "text"} gives text; {"type": "json_object"} JSON;
  {"type": "json_schema", "json_schema": {"name", "schema", "strict"}} a schema-constrained answer.
- `max_completion_tokens` (or `max_tokens`; else the `default_max_tokens` switch) cuts a longer
  answer: finish_reason "length". `usage` is {prompt_tokens, completion_tokens, total_tokens}.
- `stream: true` sends SSE: `data: <chunk>` events (first the role, then reasoning and content pieces,
  then the finish_reason), `data: [DONE]` last; `stream_options.include_usage` adds `"usage": null`
  to each chunk and a last chunk with `choices: []` and the usage.
- Reasoning (a thinking model, or the `reasoning_content` quirk) is `message.reasoning_content` /
  `delta.reasoning_content`; the `think` quirk puts `<think>` into the content instead.
- Errors: {"error": {"message", "type", "param", "code"}}: 400 bad request, 401 wrong or missing key
  (when `api_key` is set), 404 unknown model or route, 500 an `unloadable` model, 503 a full queue or
  `fail_next`. The `refuse_json_object` quirk answers LM Studio's own 400 body
  {"error": "'response_format.type' must be 'json_schema' or 'text'"}.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from daemon.standin import brain, catalog
from daemon.standin.ask import Ask, Work
from daemon.standin.config import BUSY_ERROR, RUNNER_DIED, StandinConfig
from daemon.standin.names import name_key
from daemon.standin.plumbing import Exchange, sse

FINGERPRINT = "fp_standin"
LMSTUDIO_JSON_OBJECT = "'response_format.type' must be 'json_schema' or 'text'"
NO_JSON_SCHEMA = "response_format of type 'json_schema' is not supported by this server"
ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
_DATA_URL = re.compile(r"data:[^,;]*(?:;[^,;=]+=[^,;]*)*;base64,(.*)", re.DOTALL)


@dataclass(frozen=True)
class ApiError:
    """An error answer: status and OpenAI's error fields (or a raw body, for servers that differ)."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    raw: dict[str, Any] | None = None


def handle(h: Exchange) -> None:
    """Answer one /v1/* request (after the key check, when a key is set)."""
    config = h.standin.config
    if config.api_key is not None and (problem := _key_problem(h, config.api_key)):
        return send_error(h, problem)
    if (h.command, h.route) == ("GET", "/v1/models"):
        data = [catalog.openai_entry(m, config.api != "openai") for m in config.installed()]
        return h.send_json(200, {"object": "list", "data": data})
    if h.command == "GET" and h.route.startswith("/v1/models/"):
        return _one_model(h, unquote(h.route.removeprefix("/v1/models/")))
    if (h.command, h.route) == ("POST", "/v1/chat/completions"):
        return _chat(h)
    not_found(h)


def not_found(h: Exchange) -> None:
    """The 404 of a server that does not have this route (also /api/* with `api` "openai")."""
    send_error(h, ApiError(404, f"Unexpected endpoint or method. ({h.command} {h.route})", "not_found_error"))


def send_error(h: Exchange, error: ApiError) -> None:
    """An error answer in OpenAI's shape, or the raw body a quirk asks for."""
    fields = {"message": error.message, "type": error.type, "param": error.param, "code": error.code}
    h.send_json(error.status, error.raw if error.raw is not None else {"error": fields})


def _key_problem(h: Exchange, key: str) -> ApiError | None:
    sent = h.headers.get("Authorization", "")
    if not sent.startswith("Bearer ") or not sent[7:].strip():
        message = "You didn't provide an API key. Provide it in an Authorization header (Bearer auth)."
        return ApiError(401, message)
    if not hmac.compare_digest(sent[7:].strip().encode(), key.encode()):
        return ApiError(401, "Incorrect API key provided.", code="invalid_api_key")
    return None


def _one_model(h: Exchange, wanted: str) -> None:
    config = h.standin.config
    found = next((m for m in config.installed() if name_key(m) == name_key(wanted)), None)
    if found is None:
        return send_error(h, _model_missing(wanted))
    h.send_json(200, catalog.openai_entry(found, config.api != "openai"))


def _model_missing(model: str) -> ApiError:
    message = f"The model `{model}` does not exist or you do not have access to it."
    return ApiError(404, message, code="model_not_found")


def _chat(h: Exchange) -> None:
    body, reason = h.parse_json()
    if body is None:
        return send_error(h, ApiError(400, f"We could not parse the JSON body of your request: {reason}"))
    standin = h.standin
    standin.record(h.route, body, h.client_address[1])
    if failure := standin.config.take_failure():
        return send_error(h, _injected(*failure))
    parsed = _parse(body, standin.config, standin.quirks_of)
    if isinstance(parsed, ApiError):
        return send_error(h, parsed)
    ask, stream, include_usage = parsed
    with standin.answering(ask) as work:
        if work is None:
            return send_error(h, ApiError(503, BUSY_ERROR, "server_error"))
        _render(h, ask, work, stream, include_usage)


def _parse(
    body: dict[str, Any], config: StandinConfig, quirks_of: Callable[[list[dict[str, Any]]], frozenset[str]]
) -> tuple[Ask, bool, bool] | ApiError:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        return ApiError(400, "you must provide a model parameter")
    messages = _messages(body.get("messages"))
    if isinstance(messages, ApiError):
        return messages
    fmt = _format(body.get("response_format"), quirks_of(messages))
    if isinstance(fmt, ApiError):
        return fmt
    if not config.knows(model):
        return _model_missing(model)
    if brain.images_of(messages) and not config.is_vision(model):
        return ApiError(400, f"model `{model}` does not support image input", param="messages")
    max_tokens = _max_tokens(body)
    if isinstance(max_tokens, ApiError):
        return max_tokens
    stream = body.get("stream") is True
    if body.get("stream_options") is not None and not stream:
        message = "The 'stream_options' parameter is only allowed when 'stream' is enabled."
        return ApiError(400, message, param="stream_options")
    if config.is_unloadable(model):
        return ApiError(500, RUNNER_DIED, "api_error")
    include_usage = stream and (body.get("stream_options") or {}).get("include_usage") is True
    return Ask(model, messages, fmt, {}, None, max_tokens, config.keep_alive), stream, include_usage


def _messages(raw: Any) -> list[dict[str, Any]] | ApiError:
    if raw is None:
        return ApiError(
            400, "Missing required parameter: 'messages'.", param="messages", code="missing_required_parameter"
        )
    if not isinstance(raw, list) or not raw:
        return ApiError(400, f"{json.dumps(raw)} is not a non-empty array - 'messages'", param="messages")
    messages = []
    for index, message in enumerate(raw):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            param = f"messages[{index}].role"
            return ApiError(400, f"Invalid value for '{param}'.", param=param, code="invalid_value")
        content = _content(message.get("content"), f"messages[{index}].content")
        if isinstance(content, ApiError):
            return content
        text, images = content
        messages.append({"role": message["role"], "content": text} | ({"images": images} if images else {}))
    return messages


def _content(content: Any, param: str) -> tuple[str, list[str]] | ApiError:
    """Text and base64 images of a message's content (a string, or a list of parts)."""
    if content is None or isinstance(content, str):
        return content or "", []
    if not isinstance(content, list):
        return ApiError(400, f"Invalid type for '{param}'.", param=param, code="invalid_type")
    texts, images = [], []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(str(part.get("text") or ""))
        elif kind == "image_url":
            if (image := _image(part.get("image_url"))) is None:
                return ApiError(400, "image_url must be a base64 data URL (data:image/...;base64,...)", param=param)
            images.append(image)
        else:
            return ApiError(400, f"Invalid content part type {kind!r} in '{param}'.", param=param, code="invalid_value")
    return "\n".join(texts), images


def _image(image_url: Any) -> str | None:
    """The base64 data of an image_url part, or None when it is no valid base64 data URL."""
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    found = _DATA_URL.fullmatch(str(url or ""))
    if found is None:
        return None
    try:
        brain.decode_image(found.group(1))
    except ValueError:  # binascii.Error is a ValueError
        return None
    return found.group(1)


def _format(response_format: Any, quirks: frozenset[str]) -> Any:
    """The brain's `format` for a response_format: None, "json" or a schema; or the error."""
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        if "refuse_json_object" in quirks:
            return ApiError(400, LMSTUDIO_JSON_OBJECT, raw={"error": LMSTUDIO_JSON_OBJECT})
        return "json"
    if kind != "json_schema":
        message = f"Invalid value: {kind!r}. Supported values are: 'json_object', 'json_schema', and 'text'."
        return ApiError(400, message, param="response_format.type", code="invalid_value")
    if "refuse_json_schema" in quirks:
        return ApiError(400, NO_JSON_SCHEMA, param="response_format")
    spec = response_format.get("json_schema")
    for missing, absent in (("response_format.json_schema", not isinstance(spec, dict)),
                            ("response_format.json_schema.name", not (spec or {}).get("name"))):  # fmt: skip
        if absent:
            message = f"Missing required parameter: '{missing}'."
            return ApiError(400, message, param=missing, code="missing_required_parameter")
    schema = spec.get("schema")
    return schema if isinstance(schema, dict) else {"type": "object"}


def _max_tokens(body: dict[str, Any]) -> int | None | ApiError:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            return ApiError(400, f"Invalid type for '{key}': expected an integer.", param=key, code="invalid_type")
        if value < 1:
            message = f"Invalid '{key}': integer below minimum value. Expected a value >= 1, but got {value} instead."
            return ApiError(400, message, param=key, code="integer_below_min_value")
        return value
    return None


def _injected(status: int, fail_body: str | None) -> ApiError:
    """An injected failure (`fail_next`): raw JSON as given, else the message in OpenAI's shape."""
    if fail_body is not None:
        try:
            raw = json.loads(fail_body)
            return ApiError(status, fail_body, raw=raw if isinstance(raw, dict) else {"error": raw})
        except ValueError:
            pass
    return ApiError(status, fail_body or BUSY_ERROR, "server_error" if status >= 500 else "invalid_request_error")


def _render(h: Exchange, ask: Ask, work: Work, stream: bool, include_usage: bool) -> None:
    answer, standin = work.answer, h.standin
    head = {"id": f"chatcmpl-standin-{standin.next_id()}", "created": int(standin.clock()), "model": ask.model}
    head["system_fingerprint"] = FINGERPRINT
    stall = standin.config.stall_seconds if "stall" in work.quirks else 0.0
    if not stream:
        standin.pause(work.left(stall))
        message = {"role": "assistant", "content": answer.content}
        message |= {"reasoning_content": answer.thinking} if answer.thinking else {}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": answer.done_reason}
        return h.send_json(200, {**head, "object": "chat.completion", "choices": [choice], "usage": _usage(answer)})
    chunks = _chunks({**head, "object": "chat.completion.chunk"}, answer, include_usage)
    h.stream(chunks, "text/event-stream; charset=utf-8", sse, **work.pacing(len(chunks), stall, at=2))


def _chunks(head: dict[str, Any], answer: brain.Answer, include_usage: bool) -> list[Any]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**head, "choices": [choice]} | ({"usage": None} if include_usage else {})

    chunks: list[Any] = [chunk({"role": "assistant", "content": ""})]
    chunks += [chunk({"reasoning_content": piece}) for piece in brain.pieces(answer.thinking)]
    chunks += [chunk({"content": piece}) for piece in brain.pieces(answer.content)]
    chunks.append(chunk({}, answer.done_reason))
    if include_usage:
        chunks.append({**head, "choices": [], "usage": _usage(answer)})
    return [*chunks, "[DONE]"]


def _usage(answer: brain.Answer) -> dict[str, int]:
    prompt, completion = answer.prompt_eval_count, answer.eval_count
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

"""Ollama's API (/api/*) over the stand-in's brain, with Ollama's shapes, statuses and error bodies.

Endpoints: GET/HEAD / ("Ollama is running"), GET/HEAD /api/version, GET /api/tags, GET /api/ps,
POST /api/show, /api/chat, /api/generate (NDJSON streaming unless `stream: false`), /api/pull (pull.py).
Errors are {"error": "..."}: 400 bad body, format, images or think; 404 unknown model; 500 a model in
`unloadable`; 503 a full queue or `fail_next`. A chat without messages (a generate without prompt)
only loads the model (done_reason "load"), or unloads it with keep_alive 0 ("unload").
`options.num_predict` limits the answer (done_reason "length" when it cuts); `num_ctx` truncates the
prompt and decides reloads (loaded.py). The "stall" quirk goes silent after the first chunk.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from daemon.standin import brain, catalog, names, pull
from daemon.standin.ask import UNLIMITED, Ask, Work
from daemon.standin.config import BUSY_ERROR, RUNNER_DIED, StandinConfig
from daemon.standin.loaded import keep_alive_seconds
from daemon.standin.plumbing import JSON_TYPE, Exchange, ndjson

VERSION = "0.12.6"
LOAD_NS = 1_000_000


def handle(h: Exchange) -> None:
    """Answer one /api/* (or root) request; unknown routes get Go's plain 404."""
    endpoint = ROUTES.get((h.command, h.route))
    if endpoint is None:
        return h.send(404, b"404 page not found", "text/plain")
    endpoint(h)


def _error(h: Exchange, status: int, message: str) -> None:
    h.send_json(status, {"error": message})


def _root(h: Exchange) -> None:
    h.send(200, b"Ollama is running", "text/plain; charset=utf-8")


def _version(h: Exchange) -> None:
    h.send_json(200, {"version": VERSION})


def _tags(h: Exchange) -> None:
    h.send_json(200, {"models": [catalog.model_entry(m) for m in h.standin.config.installed()]})


def _ps(h: Exchange) -> None:
    config, loaded = h.standin.config, h.standin.loaded
    entries = [
        catalog.ps_entry(r.name, r.num_ctx or config.num_ctx_default(r.name), loaded.expires_at(r))
        for r in sorted(loaded.loaded(), key=lambda r: -r.expires_at)
    ]
    h.send_json(200, {"models": entries})


def _show(h: Exchange) -> None:
    body, reason = h.parse_json()
    if body is None:
        return _error(h, 400, reason)
    model = body.get("model") or body.get("name")
    if not model:
        return _error(h, 400, "model is required")
    if not h.standin.config.knows(model):
        return _error(h, 404, f"model '{model}' not found")
    h.send_json(200, catalog.show_payload(model, h.standin.config))


def _pull(h: Exchange) -> None:
    body, reason = h.parse_json()
    if body is None:
        return _error(h, 400, reason)
    config = h.standin.config
    name = names.parse_name(str(body.get("model") or body.get("name") or ""))
    if name is None:
        return _error(h, 400, pull.INVALID_NAME)
    streaming, interval = body.get("stream") is not False, max(0.0, config.pull_interval)
    if problem := pull.problem(name, config):
        if not streaming:
            return _error(h, 500, problem)
        return h.stream([{"status": "pulling manifest"}, {"error": problem}], "application/x-ndjson", ndjson, interval)
    lines = pull.progress(name, config.pull_steps, lambda: config.add_model(name.shortest))
    if streaming:
        return h.stream(lines, "application/x-ndjson", ndjson, interval)
    h.standin.pause(interval * len(lines))
    lines[-1]()
    h.send_json(200, {"status": "success"})


def _complete(h: Exchange, kind: str) -> None:
    body, reason = h.parse_json()
    if body is None:
        return _error(h, 400, reason)
    standin = h.standin
    config = standin.config
    standin.record(h.route, body, h.client_address[1])
    if failure := config.take_failure():
        return h.send(failure[0], failure_body(failure[1]), JSON_TYPE)
    if problem := problem_of(kind, body, config):
        return _error(h, *problem)
    try:
        keep_alive = keep_alive_seconds(body.get("keep_alive"), config.keep_alive)
    except (ValueError, TypeError) as exc:
        return _error(h, 400, str(exc))
    if config.is_unloadable(body["model"]):
        return _error(h, 500, RUNNER_DIED)
    messages = messages_of(kind, body)
    options = body.get("options") if isinstance(body.get("options"), dict) else {}
    if (kind == "chat" and not messages) or (kind == "generate" and not body.get("prompt")):
        return _load_only(h, kind, body, options, keep_alive)
    ask = Ask(body["model"], messages, body.get("format"), options, body.get("think"), _max_tokens(options), keep_alive)
    with standin.answering(ask) as work:
        if work is None:
            return _error(h, 503, BUSY_ERROR)
        _answer(h, kind, body, work)


def _load_only(h: Exchange, kind: str, body: dict[str, Any], options: dict[str, Any], keep_alive: float) -> None:
    unload = keep_alive == 0
    if unload:
        h.standin.loaded.unload(body["model"])
    else:
        h.standin.loaded.use(body["model"], options, keep_alive)
    h.send_json(200, frame(kind, body, "", None, True) | {"done_reason": "unload" if unload else "load"})


def _chat(h: Exchange) -> None:
    _complete(h, "chat")


def _generate(h: Exchange) -> None:
    _complete(h, "generate")


def _answer(h: Exchange, kind: str, body: dict[str, Any], work: Work) -> None:
    answer = work.answer
    stall = h.standin.config.stall_seconds if "stall" in work.quirks else 0.0
    if body.get("stream", True) is False:
        h.standin.pause(work.left(stall))
        return h.send_json(200, frame(kind, body, answer.content, answer.thinking, True) | _counters(h, work))
    chunks: list[Any] = [frame(kind, body, "", piece) for piece in brain.pieces(answer.thinking)]
    chunks += [frame(kind, body, piece) for piece in brain.pieces(answer.content)]
    chunks.append(lambda: frame(kind, body, "", None, True) | _counters(h, work))
    h.stream(chunks, "application/x-ndjson", ndjson, **work.pacing(len(chunks), stall, at=1))


def _counters(h: Exchange, work: Work) -> dict[str, Any]:
    elapsed = time.monotonic_ns() - h.started_ns
    return {
        "done_reason": work.answer.done_reason,
        **durations(work.latency, work.load_seconds, elapsed),
        "prompt_eval_count": work.answer.prompt_eval_count,
        "eval_count": work.answer.eval_count,
    }


def _max_tokens(options: dict[str, Any]) -> int | None:
    try:
        limit = options.get("num_predict")
        return None if limit is None else (int(limit) if int(limit) > 0 else UNLIMITED)
    except (TypeError, ValueError):
        return None


# --- Ollama's shapes ------------------------------------------------------------------------------


def messages_of(kind: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The conversation of a chat body, or a generate body's system + prompt as messages."""
    if kind == "chat":
        return [m for m in body.get("messages") or [] if isinstance(m, dict)]
    messages = [{"role": "system", "content": body["system"]}] if body.get("system") else []
    user = {"role": "user", "content": body.get("prompt") or "", "images": body.get("images") or []}
    return messages + [user]


def problem_of(kind: str, body: dict[str, Any], config: StandinConfig) -> tuple[int, str] | None:
    """The error Ollama would answer before running the model, if any."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        return 400, "model is required"
    if not config.knows(model):
        if kind == "chat":
            return 404, f'model "{model}" not found, try pulling it first'
        return 404, f"model '{model}' not found"
    fmt = body.get("format")
    if not (fmt is None or isinstance(fmt, dict) or fmt in ("", "json")):
        return 400, 'invalid format: expected "json" or a valid JSON schema'
    images = brain.images_of(messages_of(kind, body))
    if images and not config.is_vision(model):
        reason = "this model is missing data required for image input"
        return 400, f'"{model}" does not support images: {reason}'
    for image in images:
        try:
            brain.decode_image(image)
        except (ValueError, TypeError):  # binascii.Error is a ValueError
            return 400, "illegal base64 data at input byte 0"
    if body.get("think") is True and not config.is_thinking(model):
        return 400, f'"{model}" does not support thinking'
    return None


def frame(
    kind: str, body: dict[str, Any], text: str, thinking: str | None = None, done: bool = False
) -> dict[str, Any]:
    """One response object (a stream chunk or the start of the final one)."""
    out: dict[str, Any] = {"model": body.get("model"), "created_at": _now()}
    if kind == "chat":
        out["message"] = {"role": "assistant", "content": text}
        if thinking:
            out["message"]["thinking"] = thinking
    else:
        out["response"] = text
        if thinking:
            out["thinking"] = thinking
    out["done"] = done
    return out


def durations(latency: float, load_seconds: float, elapsed_ns: int) -> dict[str, int]:
    """Nanosecond timings that add up: load + prompt eval + eval <= total."""
    work = int(latency * 1e9)
    load = max(LOAD_NS, int(load_seconds * 1e9))
    prompt = max(work // 4, 1000)
    evaluation = max(work - work // 4, 1000)
    total = max(elapsed_ns, load + prompt + evaluation)
    return {"total_duration": total, "load_duration": load, "prompt_eval_duration": prompt, "eval_duration": evaluation}


def failure_body(fail_body: str | None) -> bytes:
    """An injected failure's body: Ollama's "server busy", a message, or raw JSON as given."""
    if fail_body is None:
        return json.dumps({"error": BUSY_ERROR}).encode()
    try:
        json.loads(fail_body)
    except ValueError:
        return json.dumps({"error": fail_body}).encode()
    return fail_body.encode()


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


ROUTES = {
    ("GET", "/"): _root,
    ("HEAD", "/"): _root,
    ("GET", "/api/version"): _version,
    ("HEAD", "/api/version"): _version,
    ("GET", "/api/tags"): _tags,
    ("GET", "/api/ps"): _ps,
    ("POST", "/api/show"): _show,
    ("POST", "/api/chat"): _chat,
    ("POST", "/api/generate"): _generate,
    ("POST", "/api/pull"): _pull,
}

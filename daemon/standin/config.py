"""The stand-in's switches: what it knows and how it misbehaves, all safe to change while it serves.

Set a switch as an attribute of `StandinConfig` (`standin.config.latency = 0.2`), all at once and
validated with `config.update({...})`, as JSON POSTed to `/_standin/config`, or as a command-line
flag of `python -m daemon.standin` (list switches repeat their flag; MODEL=VALUE switches too).
A model named in `vision`, `thinking`, `tools`, `weak` or `unloadable` is installed as well.

| attribute | flag | meaning |
|---|---|---|
| models | --model | installed models (default llama3.2) |
| vision | --vision | models that accept images |
| thinking | --thinking | models with the "thinking" capability (they think unless told `think: false`) |
| tools | --tools | models with the "tools" capability (only listed by /api/show) |
| weak | --weak | models that answer differently on documents marked `[[standin:hard]]` (see brain.py) |
| unloadable | --unloadable | models whose runner dies on load: HTTP 500 "llama runner process has terminated: ..." |
| context_length | --context-length | every model's trained context, as /api/show gives it (default 8192) |
| context_by_model | --context-by-model M=N | a model's own context length instead |
| default_num_ctx | --default-num-ctx | context used when a request sends no num_ctx (default: the model's context) |
| keep_alive | --keep-alive | seconds a model stays loaded when a request names no keep_alive (default 300) |
| load_latency | --load-latency | seconds a load or reload takes (default 0) |
| latency | --latency | seconds an answer takes (default 0) |
| latency_by_model | --latency-by-model M=S | a model's own latency instead |
| slots | --slots | answers computed at once (default 1) |
| max_queue | --max-queue | requests allowed to wait for a slot; beyond: 503 "server busy" (default 512) |
| default_max_tokens | --default-max-tokens | the server's answer limit when a request sets none (default none) |
| fail_next | --fail-next | the next N model calls fail ... |
| fail_status | --fail-status | ... with this status (default 503) ... |
| fail_body | --fail-body | ... and this message or raw JSON body (default Ollama's "server busy") |
| quirks | --quirk | misbehaviours (below); most also per document with a `[[standin:NAME]]` marker |
| stall_seconds | --stall-seconds | how long the "stall" quirk goes silent (default 30) |
| api | --api | which API it speaks: `ollama` (/api/*), `openai` (/v1/*) or `both` (default) |
| api_key | --api-key | when set, /v1/* needs `Authorization: Bearer <it>`, else 401 |
| impostor | --impostor | not a model server at all: `html` (200 page), `501`, `garbage` (200, not JSON) |
| pullable | --pullable | names /api/pull finds (default: every valid name) |
| pull_steps | --pull-steps | progress lines per layer of a pull (default 4) |
| pull_interval | --pull-interval | seconds between two progress lines of a pull (default 0) |

Quirks: `fence` (JSON in a ```json fence), `think` (`<think>...</think>` before the content),
`wrong_case` (label upper-cased plus "."), `garbage_once` (prose the first time a prompt is seen),
`garbage` (always prose), `unknown_label` ("banana"), `obey` (follows instructions in the document),
`slow` (10x latency, 2 s when none), `cut` (the answer cut to half its words: done_reason /
finish_reason "length"), `stall` (streams send their first chunk then nothing for stall_seconds;
non-streaming answers wait stall_seconds), `ignore_schema` (vLLM >= 0.12: a JSON answer comes as
prose around a fenced JSON block), `reasoning_content` (the answer carries reasoning: /v1
`reasoning_content`, Ollama `thinking`), `refuse_json_schema` (/v1: 400 for response_format
json_schema, like a server without structured output), `refuse_json_object` (/v1: 400 for
json_object, LM Studio's body). The /_standin/* control endpoints answer whatever api and impostor say.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from daemon.standin.names import name_key

QUIRKS = frozenset(
    {"fence", "think", "wrong_case", "garbage_once", "garbage", "unknown_label", "obey", "slow", "cut", "stall",
     "ignore_schema", "reasoning_content", "refuse_json_schema", "refuse_json_object"}
)  # fmt: skip
APIS = ("ollama", "openai", "both")
IMPOSTORS = ("html", "501", "garbage")
# Ollama's ErrMaxQueue text, two spaces included.
BUSY_ERROR = "server busy, please try again.  maximum pending requests exceeded"
RUNNER_DIED = "llama runner process has terminated: error loading model: unable to allocate CUDA0 buffer"


@dataclass
class StandinConfig:
    """What the stand-in knows and how it misbehaves; safe to change while it serves."""

    models: list[str] = field(default_factory=lambda: ["llama3.2"])
    vision: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)
    weak: list[str] = field(default_factory=list)
    unloadable: list[str] = field(default_factory=list)
    context_length: int = 8192
    context_by_model: dict[str, int] = field(default_factory=dict)
    default_num_ctx: int | None = None
    keep_alive: float = 300.0
    load_latency: float = 0.0
    latency: float = 0.0
    latency_by_model: dict[str, float] = field(default_factory=dict)
    slots: int = 1
    max_queue: int = 512
    default_max_tokens: int | None = None
    fail_next: int = 0
    fail_status: int = 503
    fail_body: str | None = None
    quirks: set[str] = field(default_factory=set)
    stall_seconds: float = 30.0
    api: str = "both"
    api_key: str | None = None
    impostor: str | None = None
    pullable: list[str] | None = None
    pull_steps: int = 4
    pull_interval: float = 0.0
    seen_prompts: set[str] = field(default_factory=set, init=False, repr=False, compare=False)
    lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False, compare=False)

    def installed(self) -> list[str]:
        """Known models: `models` plus any named only in a per-model list."""
        names: list[str] = []
        for name in [*self.models, *self.vision, *self.thinking, *self.tools, *self.weak, *self.unloadable]:
            if not _contains(names, name):
                names.append(name)
        return names

    def knows(self, model: str) -> bool:
        """Whether the model is installed ("x" and "x:latest" are the same)."""
        return _contains(self.installed(), model)

    def is_vision(self, model: str) -> bool:
        """Whether the model accepts images."""
        return _contains(self.vision, model)

    def is_thinking(self, model: str) -> bool:
        """Whether the model has the "thinking" capability."""
        return _contains(self.thinking, model)

    def is_weak(self, model: str) -> bool:
        """Whether the model answers like the weaker model on `[[standin:hard]]` documents."""
        return _contains(self.weak, model)

    def is_unloadable(self, model: str) -> bool:
        """Whether loading the model kills its runner."""
        return _contains(self.unloadable, model)

    def capabilities(self, model: str) -> list[str]:
        """What `/api/show` lists for the model."""
        flags = [("vision", self.vision), ("thinking", self.thinking), ("tools", self.tools)]
        return ["completion"] + [name for name, models in flags if _contains(models, model)]

    def context_of(self, model: str) -> int:
        """The model's trained context length."""
        return _lookup(self.context_by_model, model, self.context_length)

    def num_ctx_default(self, model: str) -> int:
        """The context a request that sends no num_ctx gets."""
        return self.default_num_ctx or self.context_of(model)

    def latency_of(self, model: str) -> float:
        """Seconds an answer of this model takes."""
        return _lookup(self.latency_by_model, model, self.latency)

    def add_model(self, model: str) -> None:
        """Install a model (what a pull does)."""
        with self.lock:
            if not self.knows(model):
                self.models.append(model)

    def remove_model(self, model: str) -> bool:
        """Uninstall a model; False when it was not there."""
        with self.lock:
            removed = self.knows(model)
            for names in (self.models, self.vision, self.thinking, self.tools, self.weak, self.unloadable):
                names[:] = [n for n in names if not _contains([n], model)]
            return removed

    def take_failure(self) -> tuple[int, str | None] | None:
        """Use up one injected failure: (status, fail_body), or None when none is pending."""
        with self.lock:
            if self.fail_next <= 0:
                return None
            self.fail_next -= 1
            return self.fail_status, self.fail_body

    def first_sighting(self, key: str) -> bool:
        """True the first time a prompt key is seen (for "garbage_once")."""
        with self.lock:
            if key in self.seen_prompts:
                return False
            self.seen_prompts.add(key)
            return True

    def update(self, changes: dict[str, Any]) -> None:
        """Set switches from JSON-like values, all or none; ValueError on unknown switches or values."""
        coerced = {name: _coerce(name, value) for name, value in changes.items()}
        with self.lock:
            for name, value in coerced.items():
                setattr(self, name, value)

    def snapshot(self) -> dict[str, Any]:
        """Every switch as JSON-ready values."""
        with self.lock:
            data = {name: getattr(self, name) for name in SWITCHES}
        data["quirks"] = sorted(data["quirks"])
        return json.loads(json.dumps(data))  # deep copy: the lists and dicts are no longer shared


# --- the switch table: coercion, and the command line's flags ---------------------------------


@dataclass(frozen=True)
class Switch:
    """How one switch is set: its flag, how a value is coerced, and whether the flag repeats."""

    flag: str
    help: str
    coerce: Callable[[Any], Any]
    repeat: bool = False
    metavar: str | None = None


def _names(value: Any) -> list[str]:
    return [str(v) for v in ([value] if isinstance(value, str) else value)]


def _optional(kind: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None or value == "" else kind(value)


def _pairs(kind: Callable[[Any], Any]) -> Callable[[Any], dict[str, Any]]:
    def coerce(value: Any) -> dict[str, Any]:
        items = value.items() if isinstance(value, dict) else (_pair(text) for text in _names(value))
        return {str(model): kind(number) for model, number in items}

    return coerce


def _pair(text: str) -> tuple[str, str]:
    model, sep, value = text.rpartition("=")
    if not sep or not model:
        raise ValueError(f"expected MODEL=VALUE, got {text!r}")
    return model, value


def _one_of(options: tuple[str, ...], what: str) -> Callable[[Any], str]:
    def coerce(value: Any) -> str:
        if str(value) not in options:
            raise ValueError(f"unknown {what} {value!r}: expected one of {', '.join(options)}")
        return str(value)

    return coerce


def _quirks(value: Any) -> set[str]:
    quirks = set(_names(value))
    if unknown := quirks - QUIRKS:
        raise ValueError(f"unknown quirk(s): {', '.join(sorted(unknown))}")
    return quirks


def _text(value: Any) -> str:
    return str(value)


SWITCHES: dict[str, Switch] = {
    "models": Switch("--model", "an installed model", _names, repeat=True),
    "vision": Switch("--vision", "a model that accepts images", _names, repeat=True),
    "thinking": Switch("--thinking", "a model with the thinking capability", _names, repeat=True),
    "tools": Switch("--tools", "a model with the tools capability", _names, repeat=True),
    "weak": Switch("--weak", "a model that errs on [[standin:hard]] documents", _names, repeat=True),
    "unloadable": Switch("--unloadable", "a model whose runner dies on load (HTTP 500)", _names, repeat=True),
    "context_length": Switch("--context-length", "every model's trained context", int),
    "context_by_model": Switch(
        "--context-by-model", "one model's trained context", _pairs(int), repeat=True, metavar="MODEL=N"
    ),
    "default_num_ctx": Switch(
        "--default-num-ctx", "context when a request sends no num_ctx (default: the model's)", _optional(int)
    ),
    "keep_alive": Switch(
        "--keep-alive", "seconds a model stays loaded when a request names no keep_alive", float, metavar="SECONDS"
    ),
    "load_latency": Switch("--load-latency", "seconds a load or reload takes", float, metavar="SECONDS"),
    "latency": Switch("--latency", "seconds an answer takes", float, metavar="SECONDS"),
    "latency_by_model": Switch(
        "--latency-by-model", "one model's latency", _pairs(float), repeat=True, metavar="MODEL=SECONDS"
    ),
    "slots": Switch("--slots", "answers computed at once", int),
    "max_queue": Switch("--max-queue", "requests allowed to wait for a slot (then 503)", int),
    "default_max_tokens": Switch("--default-max-tokens", "answer limit when a request sets none", _optional(int)),
    "fail_next": Switch("--fail-next", "the next N model calls fail", int),
    "fail_status": Switch("--fail-status", "status of those failures", int),
    "fail_body": Switch("--fail-body", "message or raw JSON body of those failures", _optional(_text)),
    "quirks": Switch("--quirk", "a misbehaviour", _quirks, repeat=True),
    "stall_seconds": Switch("--stall-seconds", "silence of the stall quirk", float),
    "api": Switch("--api", "the API served", _one_of(APIS, "api")),
    "api_key": Switch("--api-key", "bearer key /v1/* requires", _optional(_text)),
    "impostor": Switch(
        "--impostor", "answer every path as a non-model server", _optional(_one_of(IMPOSTORS, "impostor"))
    ),
    "pullable": Switch(
        "--pullable", "a name /api/pull finds (default: every valid name)", _optional(_names), repeat=True
    ),
    "pull_steps": Switch("--pull-steps", "progress lines per layer of a pull", int),
    "pull_interval": Switch("--pull-interval", "seconds between progress lines of a pull", float, metavar="SECONDS"),
}


def _coerce(name: str, value: Any) -> Any:
    if name not in SWITCHES:
        raise ValueError(f"unknown setting: {name}")
    return SWITCHES[name].coerce(value)


def _contains(names: list[str], model: str) -> bool:
    wanted = name_key(model)
    return any(name_key(name) == wanted for name in list(names))


def _lookup(by_model: dict[str, Any], model: str, default: Any) -> Any:
    wanted = name_key(model)
    return next((value for name, value in list(by_model.items()) if name_key(name) == wanted), default)

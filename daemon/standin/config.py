"""Settings of the Ollama stand-in, changed while it runs, and the state that enforces them."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

QUIRKS = frozenset(
    {"fence", "think", "wrong_case", "garbage_once", "garbage", "unknown_label", "obey", "slow"}
)
# Ollama's ErrMaxQueue text, two spaces included.
BUSY_ERROR = "server busy, please try again.  maximum pending requests exceeded"
MODIFIED_AT = "2026-01-01T00:00:00Z"
_LISTS = ("models", "vision", "thinking")
_NUMBERS = {
    "context_length": int,
    "latency": float,
    "slots": int,
    "max_queue": int,
    "fail_next": int,
    "fail_status": int,
}


def canonical(name: str) -> str:
    """Ollama's full model name: "llama3.2" -> "llama3.2:latest" (compare case-insensitively)."""
    name = name.strip()
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


@dataclass
class StandinConfig:
    """What the stand-in knows and how it misbehaves; safe to change while it serves."""

    models: list[str] = field(default_factory=lambda: ["llama3.2"])
    vision: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    context_length: int = 8192
    latency: float = 0.0
    slots: int = 1
    max_queue: int = 512
    fail_next: int = 0
    fail_status: int = 503
    fail_body: str | None = None
    quirks: set[str] = field(default_factory=set)
    seen_prompts: set[str] = field(default_factory=set, init=False, repr=False, compare=False)
    lock: threading.RLock = field(
        default_factory=threading.RLock, init=False, repr=False, compare=False
    )

    def installed(self) -> list[str]:
        """Known models: `models` plus any named only in `vision` or `thinking`."""
        names: list[str] = []
        for name in [*self.models, *self.vision, *self.thinking]:
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

    def capabilities(self, model: str) -> list[str]:
        """What `/api/show` lists for the model."""
        caps = ["completion"]
        caps += ["vision"] if self.is_vision(model) else []
        caps += ["thinking"] if self.is_thinking(model) else []
        return caps

    def add_model(self, model: str) -> None:
        """Install a model (what a pull does)."""
        with self.lock:
            if not self.knows(model):
                self.models.append(model)

    def remove_model(self, model: str) -> bool:
        """Uninstall a model; False when it was not there."""
        with self.lock:
            removed = self.knows(model)
            for names in (self.models, self.vision, self.thinking):
                names[:] = [n for n in names if not _contains([n], model)]
            return removed

    def take_failure(self) -> tuple[int, bytes] | None:
        """Use up one injected failure: (status, JSON body), or None when none is pending."""
        with self.lock:
            if self.fail_next <= 0:
                return None
            self.fail_next -= 1
            return self.fail_status, _failure_body(self.fail_body)

    def first_sighting(self, key: str) -> bool:
        """True the first time a prompt key is seen (for "garbage_once")."""
        with self.lock:
            if key in self.seen_prompts:
                return False
            self.seen_prompts.add(key)
            return True

    def update(self, changes: dict[str, Any]) -> None:
        """Set fields from JSON-like values, all or none; ValueError on unknown fields or quirks."""
        coerced = {name: _coerce(name, value) for name, value in changes.items()}
        with self.lock:
            for name, value in coerced.items():
                setattr(self, name, value)

    def snapshot(self) -> dict[str, Any]:
        """The public settings as JSON-ready values."""
        with self.lock:
            data = {name: list(getattr(self, name)) for name in _LISTS}
            data |= {name: getattr(self, name) for name in _NUMBERS}
            data["fail_body"] = self.fail_body
            data["quirks"] = sorted(self.quirks)
            return data


class SlotGate:
    """Answer slots and a bounded wait queue, like Ollama's scheduler; counts concurrency."""

    def __init__(self, config: Callable[[], StandinConfig]) -> None:
        self._config = config
        self._cond = threading.Condition()
        self.waiting = self.in_flight = self.max_in_flight = 0
        self.closed = False

    def acquire(self) -> bool:
        """Take a slot, waiting in the queue; False when the queue is full or we stop."""
        config = self._config()
        with self._cond:
            if self.in_flight >= max(1, config.slots) and self.waiting >= config.max_queue:
                return False
            self.waiting += 1
            try:
                # The timeout notices slots raised at runtime, which nobody notifies about.
                while self.in_flight >= max(1, config.slots) and not self.closed:
                    self._cond.wait(0.05)
            finally:
                self.waiting -= 1
            if self.closed:
                return False
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return True

    def release(self) -> None:
        """Give a slot back."""
        with self._cond:
            self.in_flight -= 1
            self._cond.notify()

    def reset_peak(self) -> None:
        """Start counting the peak concurrency afresh."""
        with self._cond:
            self.max_in_flight = self.in_flight

    def set_closed(self, closed: bool) -> None:
        """Refuse (or accept again) new work and wake every waiter."""
        with self._cond:
            self.closed = closed
            self._cond.notify_all()


def loopback_address(host: str) -> str:
    """The host as an address when it is loopback; ValueError otherwise, before any binding."""
    name = "127.0.0.1" if host.strip().lower() == "localhost" else host.strip().strip("[]")
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        raise ValueError(f"the stand-in binds only to loopback addresses, not {host!r}") from None
    if not address.is_loopback:
        raise ValueError(f"the stand-in binds only to loopback addresses, not {host!r}")
    return str(address)


def _contains(names: list[str], model: str) -> bool:
    wanted = canonical(model).lower()
    return any(canonical(name).lower() == wanted for name in list(names))


def _failure_body(fail_body: str | None) -> bytes:
    if fail_body is None:
        return json.dumps({"error": BUSY_ERROR}).encode()
    try:
        json.loads(fail_body)
    except ValueError:
        return json.dumps({"error": fail_body}).encode()
    return fail_body.encode()


def _coerce(name: str, value: Any) -> Any:
    if name in _NUMBERS:
        return _NUMBERS[name](value)
    if name in _LISTS:
        return [str(v) for v in ([value] if isinstance(value, str) else value)]
    if name == "fail_body":
        return None if value is None else str(value)
    if name == "quirks":
        quirks = {str(q) for q in ([value] if isinstance(value, str) else value)}
        if unknown := quirks - QUIRKS:
            raise ValueError(f"unknown quirk(s): {', '.join(sorted(unknown))}")
        return quirks
    raise ValueError(f"unknown setting: {name}")


# --- what the endpoints say about a model -------------------------------------------------


def _details() -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": "llama",
        "families": ["llama"],
        "parameter_size": "3.2B",
        "quantization_level": "Q4_K_M",
    }


def _digest(model: str) -> str:
    return hashlib.sha256(canonical(model).lower().encode()).hexdigest()


def model_entry(model: str) -> dict[str, Any]:
    """One `/api/tags` entry."""
    name, digest = canonical(model), _digest(model)
    return {
        "name": name,
        "model": name,
        "modified_at": MODIFIED_AT,
        "size": 2_000_000_000 + int(digest[:6], 16),
        "digest": digest,
        "details": _details(),
    }


def show_payload(model: str, config: StandinConfig) -> dict[str, Any]:
    """The `/api/show` answer."""
    name = canonical(model)
    modelfile = (
        '# Modelfile generated by "ollama show"\n'
        "# To build a new Modelfile based on this, replace FROM with:\n"
        f"# FROM {name}\n\nFROM /standin/{name}\n"
        'TEMPLATE "{{ .Prompt }}"\nPARAMETER stop "<|eot_id|>"\n'
    )
    return {
        "license": "",
        "modelfile": modelfile,
        "parameters": 'stop                           "<|eot_id|>"',
        "template": "{{ .Prompt }}",
        "details": _details(),
        "model_info": {
            "general.architecture": "llama",
            "general.parameter_count": 3_212_749_888,
            "llama.context_length": config.context_length,
            "llama.embedding_length": 3072,
        },
        "capabilities": config.capabilities(model),
        "modified_at": MODIFIED_AT,
    }


def pull_steps(model: str) -> list[dict[str, Any]]:
    """The progress lines of a pull: manifest, one layer in three steps, success."""
    digest, total = f"sha256:{_digest(model)}", 2_019_393_189
    layer = [
        {"status": f"pulling {digest[7:19]}", "digest": digest, "total": total, "completed": done}
        for done in (0, total // 2, total)
    ]
    return [
        {"status": "pulling manifest"},
        *layer,
        {"status": "verifying sha256 digest"},
        {"status": "writing manifest"},
        {"status": "success"},
    ]

"""Which models the stand-in holds "in memory", with which num_ctx, and how often it reloaded them.

Like Ollama: a request loads its model when it is not loaded; the model stays loaded for the
request's `keep_alive` (seconds as a number, a Go duration such as "30m" as a string; 0 unloads after
the answer, a negative value keeps it forever; none: the `keep_alive` switch, 300 s). A request whose
num_ctx differs from the one the model was loaded with reloads it, and so does a request without
num_ctx after one with it (and the other way round): "no num_ctx" is a value of its own here, which is
exactly what makes a daemon alternating between the two pay a reload per switch. Expired models are
unloaded lazily, by the injected clock. /v1 requests count as "no num_ctx", since Ollama's /v1 ignores
it. Every request's options are kept, per model, for tests (`options()`, `num_ctx_sent()`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from daemon.standin.names import display, name_key

FOREVER = float("inf")
_GO_DURATION = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# What Ollama's /api/ps shows for "forever": now plus Go's largest duration, about 292 years.
_FOREVER_SPAN = timedelta(days=292 * 365)


def keep_alive_seconds(value: Any, default: float) -> float:
    """Seconds from a request's keep_alive (FOREVER when negative); ValueError/TypeError with Go's message."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"Unsupported type: '{type(value).__name__}'")
    seconds = float(value) if not isinstance(value, str) else _go_duration(value)
    return FOREVER if seconds < 0 else seconds


def _go_duration(text: str) -> float:
    sign, rest = (-1.0, text[1:]) if text.startswith("-") else (1.0, text.removeprefix("+"))
    if rest == "0":
        return 0.0
    total, position = 0.0, 0
    while position < len(rest):
        found = _GO_DURATION.match(rest, position)
        if not found or found.group(1) in ("", "."):
            problem = "missing unit in" if rest[position:].replace(".", "").isdigit() else "invalid"
            raise ValueError(f'time: {problem} duration "{text}"')
        total += float(found.group(1)) * _UNIT[found.group(2)]
        position = found.end()
    if not rest:
        raise ValueError(f'time: invalid duration "{text}"')
    return sign * total


@dataclass
class Residency:
    """A loaded model: the num_ctx it was loaded with (None: none was sent) and when it unloads."""

    name: str
    num_ctx: int | None
    expires_at: float


@dataclass
class ModelUse:
    """What happened to one model since start or reset."""

    loads: int = 0
    reloads: int = 0
    options: list[dict[str, Any]] = field(default_factory=list)


class LoadTracker:
    """Loads, reloads and keep_alive of every model; thread-safe, timed by an injected clock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._loaded: dict[str, Residency] = {}
        self._uses: dict[str, ModelUse] = {}

    def use(self, model: str, options: dict[str, Any], keep_alive: float) -> str:
        """Note a request: "load", "reload" or "warm" (already loaded with the same num_ctx)."""
        key, now, num_ctx = name_key(model), self._clock(), _num_ctx(options)
        with self._lock:
            use = self._uses.setdefault(key, ModelUse())
            use.options.append(dict(options))
            current = self._current(key, now)
            if current is None:
                event, use.loads = "load", use.loads + 1
            elif current.num_ctx != num_ctx:
                event, use.reloads = "reload", use.reloads + 1
            else:
                event = "warm"
            self._loaded[key] = Residency(display(model), num_ctx, now + keep_alive)
            return event

    def unload(self, model: str) -> None:
        """Forget that a model is loaded."""
        with self._lock:
            self._loaded.pop(name_key(model), None)

    def loaded(self) -> list[Residency]:
        """The models loaded now, in the order they were last used."""
        now = self._clock()
        with self._lock:
            return [r for key in list(self._loaded) if (r := self._current(key, now))]

    def expires_at(self, residency: Residency) -> datetime:
        """When a loaded model unloads, as a UTC datetime."""
        now = self._clock()
        if residency.expires_at == FOREVER:
            return datetime.fromtimestamp(now, UTC) + _FOREVER_SPAN
        return datetime.fromtimestamp(residency.expires_at, UTC)

    def loads(self, model: str) -> int:
        """How often the model was loaded while not loaded."""
        return self._use(model).loads

    def reloads(self, model: str) -> int:
        """How often a request's num_ctx made the loaded model load again."""
        return self._use(model).reloads

    def options(self, model: str) -> list[dict[str, Any]]:
        """The options of every request to the model, in order."""
        return list(self._use(model).options)

    def num_ctx_sent(self, model: str) -> list[int | None]:
        """The num_ctx of every request to the model, None where it sent none."""
        return [_num_ctx(options) for options in self.options(model)]

    def snapshot(self) -> dict[str, Any]:
        """Per model: loaded now, its num_ctx, loads, reloads and every request's options (JSON-ready)."""
        loaded = {name_key(r.name): r for r in self.loaded()}
        with self._lock:
            uses = {key: (use.loads, use.reloads, list(use.options)) for key, use in self._uses.items()}
        return {
            key: {"loaded": key in loaded, "num_ctx": loaded[key].num_ctx if key in loaded else None,
                  "loads": loads, "reloads": reloads, "options": options}
            for key, (loads, reloads, options) in uses.items()
        }  # fmt: skip

    def reset(self) -> None:
        """Unload everything and forget the counts."""
        with self._lock:
            self._loaded.clear()
            self._uses.clear()

    def _use(self, model: str) -> ModelUse:
        with self._lock:
            return self._uses.get(name_key(model)) or ModelUse()

    def _current(self, key: str, now: float) -> Residency | None:
        current = self._loaded.get(key)
        if current is not None and current.expires_at <= now:
            del self._loaded[key]
            return None
        return current


def _num_ctx(options: dict[str, Any]) -> int | None:
    value = options.get("num_ctx")
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None

"""The one interface every model backend implements, and the values it answers with."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from daemon import defaults
from daemon.domain import ModelCall
from daemon.errors import UsageError


@dataclass(frozen=True)
class ModelInfo:
    """What a server says about one model; None where it does not say."""

    name: str
    context_length: int | None = None
    # None: the server does not say (OpenAI-compatible servers); the call itself then decides.
    capabilities: frozenset[str] | None = None
    size: int | None = None  # bytes on disk
    parameter_size: str | None = None  # "3.2B"
    quantisation: str | None = None  # "Q4_K_M"
    family: str | None = None


@dataclass(frozen=True)
class LoadedModel:
    """A model in the server's memory now (Ollama's /api/ps)."""

    name: str
    context_length: int | None
    size: int | None
    size_vram: int | None
    expires_at: datetime | None


@dataclass(frozen=True)
class PullProgress:
    """One line of a pull's progress: what it does, and for a layer its bytes done of its total."""

    status: str
    digest: str | None = None
    total: int | None = None
    completed: int | None = None


class ModelBackend(ABC):
    """A model server.

    `chat` fills the given `ModelCall` in place (answer, thinking, tokens, durations, done_reason,
    error; the options it really sent) and returns it. It raises `ModelUnavailable` when the server
    cannot be reached or is overloaded (`ModelTimeout` when a call got no answer in time,
    `NotAModelServer` when the URL answers as something else): the caller waits and retries without
    using an attempt. `ModelMissing` when the server lacks the model, and `ModelError` for any other
    refusal (an attempt). The call is filled even when it raises, so that it can be recorded.
    `think` is a wish: a backend sends it only to models that can think.
    """

    url: str

    @abstractmethod
    def chat(self, call: ModelCall, *, think: bool | None = None) -> ModelCall:
        """Send `call.messages` with `call.options` and `call.format`; fill in the answer."""

    @abstractmethod
    def list_models(self) -> list[str]:
        """Names of the models the server has, as the server spells them."""

    @abstractmethod
    def info(self, model: str) -> ModelInfo:
        """Context length and capabilities of one model."""

    def window(self, model: str, options: dict[str, Any]) -> int:
        """The context (tokens) a call with `options` will have: what long inputs are planned for.

        By default the workflow's num_ctx, else the model's context as `info` says, else
        `defaults.CONTEXT_TOKENS`; a backend that sends its own num_ctx says that one instead.
        """
        return int(options.get("num_ctx") or self.info(model).context_length or defaults.CONTEXT_TOKENS)

    def version(self) -> str | None:
        """The server's version (None when it has no way to say); a cheap health and identity probe."""
        self.list_models()
        return None

    def has_model(self, model: str) -> bool:
        """Whether `model` is on the server; a missing tag means `:latest`."""
        return listed(model, self.list_models())

    def catalog(self) -> list[ModelInfo]:
        """Every model with what the server says about it (for `gristmill models`)."""
        return [self.info(name) for name in self.list_models()]

    def loaded(self) -> list[LoadedModel]:
        """The models loaded in memory now; empty when the server cannot say."""
        return []

    def pull(self, model: str) -> Iterator[PullProgress]:
        """Download a model onto the server, yielding progress; only servers whose kind `pulls`."""
        raise UsageError(f"the server at {self.url} cannot pull models")

    def close(self) -> None:  # noqa: B027  (optional: most backends hold connections, some hold none)
        """Release connections."""


def listed(model: str, names: list[str]) -> bool:
    """Whether `model` is among `names`; Ollama's missing tag means `:latest`."""
    wanted = model if ":" in model else f"{model}:latest"
    return any(name == wanted or name == model for name in names)

"""The one interface every model backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from daemon.domain import ModelCall


@dataclass(frozen=True)
class ModelInfo:
    """What the server says about one model."""

    name: str
    context_length: int | None = None
    capabilities: frozenset[str] = field(default_factory=frozenset)


class ModelBackend(ABC):
    """A model server.

    `chat` fills the given `ModelCall` in place (answer, thinking, tokens, durations, error) and
    returns it. It raises `ModelUnavailable` when the server cannot be reached, times out or is
    overloaded (the caller waits and retries without using an attempt), `ModelMissing` when the
    server lacks the model, and `ModelError` for any other refusal. The call is filled even when
    it raises, so that it can be recorded.
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

    def has_model(self, model: str) -> bool:
        """Whether `model` is on the server; a missing tag means `:latest`."""
        wanted = model if ":" in model else f"{model}:latest"
        return any(name == wanted or name == model for name in self.list_models())

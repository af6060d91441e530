"""Model-server kinds: how a configured server becomes a `ModelBackend`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from daemon.llm.base import ModelBackend

if TYPE_CHECKING:
    from daemon.settings import Settings


class ServerKind(ABC):
    """One kind of model server (`ollama`, …). Subclasses set `name` and implement `backend`."""

    name: ClassVar[str]

    @abstractmethod
    def backend(self, url: str, settings: Settings) -> ModelBackend:
        """A backend talking to the server at `url`, with the settings' timeouts."""


class OllamaServer(ServerKind):
    """Ollama's own API (`/api/*`), through the official `ollama` client."""

    name = "ollama"

    def backend(self, url: str, settings: Settings) -> ModelBackend:
        from daemon.llm.ollama_backend import OllamaBackend

        return OllamaBackend(url, timeout=settings.model_timeout, connect_timeout=settings.connect_timeout)

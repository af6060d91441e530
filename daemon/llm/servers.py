"""Model-server kinds: how a configured server (`[servers.NAME]`, `kind = "…"`) becomes a `ModelBackend`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from daemon.errors import SettingsError
from daemon.llm.base import ModelBackend

if TYPE_CHECKING:
    from daemon.settings import ServerConfig, Settings


class ServerKind(ABC):
    """One kind of model server. Subclasses set the class attributes and implement `backend`."""

    name: ClassVar[str]
    title: ClassVar[str]  # "an Ollama server": what a URL that answers otherwise is not
    pulls: ClassVar[bool] = False  # `gristmill pull` can download models onto it
    # How such a server gets its models, said when `pull` cannot do it; and how to start one.
    models_hint: ClassVar[str] = ""
    start_hint: ClassVar[str] = ""

    @abstractmethod
    def backend(self, server: ServerConfig, settings: Settings) -> ModelBackend:
        """A backend talking to `server`, with the settings' timeouts."""


def api_key(server: ServerConfig) -> str | None:
    """The key the server's `api_key_env` names, read now; never stored beyond the client, never logged."""
    from daemon.settings import read_secret

    if server.api_key_env is None:
        return None
    key = read_secret(server.api_key_env)
    if key is None:
        raise SettingsError(
            f"server '{server.name}' names api_key_env {server.api_key_env}, which is not set; "
            "set that environment variable or remove api_key_env"
        )
    return key


class OllamaServer(ServerKind):
    """Ollama's own API (`/api/*`), through the official `ollama` client."""

    name = "ollama"
    title = "an Ollama server"
    pulls = True
    models_hint = "gristmill pull MODEL (or ollama pull MODEL on that machine)"
    start_hint = "start it with 'ollama serve'"

    def backend(self, server: ServerConfig, settings: Settings) -> ModelBackend:
        from daemon.llm.ollama_backend import OllamaBackend

        return OllamaBackend(
            server,
            timeout=settings.model_timeout,
            connect_timeout=settings.connect_timeout,
            keep_alive=settings.keep_alive_value,
            context_tokens=settings.context_tokens,
            api_key=api_key(server),
        )


class OpenAIServer(ServerKind):
    """Any OpenAI-compatible server (LM Studio, llama.cpp's llama-server, vLLM), through the `openai` client."""

    name = "openai"
    title = "an OpenAI-compatible server"
    models_hint = (
        "an OpenAI-compatible server gets its models its own way: LM Studio downloads and loads them "
        "in its window or with `lms get MODEL` and `lms load MODEL`; llama-server serves the GGUF file "
        "given with -m (or -hf user/repo:quant); vLLM serves the model given with `vllm serve MODEL`"
    )
    start_hint = "start the server, and make the URL end in /v1"

    def backend(self, server: ServerConfig, settings: Settings) -> ModelBackend:
        from daemon.llm.openai_backend import OpenAIBackend

        return OpenAIBackend(
            server,
            timeout=settings.model_timeout,
            connect_timeout=settings.connect_timeout,
            context_tokens=settings.context_tokens,
            api_key=api_key(server),
        )

"""The model server a command talks to outside the daemon (eval), checked by the privacy guard first."""

from __future__ import annotations

from daemon.llm.base import ModelBackend
from daemon.netguard import check_url
from daemon.plugins import registry
from daemon.settings import Settings


def model_backend(settings: Settings) -> ModelBackend:
    """A backend for the configured model server; RemoteRefused when it is not local and not allowed."""
    check_url(
        settings.ollama_url, allowed=settings.allow_remote_model, what="the model server",
        how_to_allow="GRISTMILL_ALLOW_REMOTE_MODEL=true", local_networks=settings.local_networks,
    )  # fmt: skip  # (keyword arguments read as one sentence)
    return registry().servers["ollama"].backend(settings.ollama_url, settings)

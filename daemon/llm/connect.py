"""The model servers a command talks to outside the daemon (eval), each checked by the privacy guard first."""

from __future__ import annotations

from daemon.llm.base import ModelBackend
from daemon.settings import Settings


def model_backend(settings: Settings) -> ModelBackend:
    """Every configured server behind one router; RemoteRefused when one is not local and not allowed."""
    from daemon.llm.configured import build_router

    return build_router(settings)

"""What each configured model server says about itself, for `check` and `models`: up or down, version, models."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from daemon.errors import GristmillError, ModelError, NotAModelServer
from daemon.llm.base import LoadedModel, ModelInfo
from daemon.llm.configured import kind_of
from daemon.llm.servers import ServerKind
from daemon.netguard import RemoteRefused
from daemon.settings import ServerConfig, Settings

GB = 1e9


@dataclass
class ServerStatus:
    """One server as it answered just now."""

    config: ServerConfig
    kind: ServerKind | None
    up: bool = False
    version: str | None = None
    error: str | None = None
    refused: bool = False  # the remote guard refused its URL: nothing was sent
    invalid: bool = False  # its settings are wrong (kind, api_key_env): nothing was sent
    impostor: bool = False  # the URL answers, but as something else
    models: list[ModelInfo] = field(default_factory=list)
    loaded: list[LoadedModel] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def as_json(self) -> dict[str, Any]:
        """The server as `models --json` prints it."""
        loaded = {m.name: m for m in self.loaded}
        return {
            "server": self.config.name,
            "kind": self.config.kind,
            "url": self.config.url,
            "slots": self.config.slots,
            "up": self.up,
            "version": self.version,
            "error": self.error,
            "models": [_model_json(m, loaded.get(m.name)) for m in self.models],
        }


def survey(config: ServerConfig, settings: Settings, *, detailed: bool) -> ServerStatus:
    """Ask one server what it is and has; `detailed` asks for each model's size, context and capabilities too."""
    from daemon.llm.configured import guard

    try:
        kind = kind_of(config)
        guard(config, settings)
    except RemoteRefused as exc:
        return ServerStatus(config, None, error=str(exc), refused=True)
    except GristmillError as exc:
        return ServerStatus(config, None, error=str(exc), invalid=True)
    status = ServerStatus(config, kind)
    try:
        backend = kind.backend(config, settings)
    except GristmillError as exc:
        status.error, status.invalid = str(exc), True
        return status
    try:
        status.version = backend.version()
        status.up = True
        status.models = backend.catalog() if detailed else [ModelInfo(name) for name in backend.list_models()]
        status.loaded = backend.loaded()
    except ModelError as exc:
        status.error, status.impostor = str(exc), isinstance(exc, NotAModelServer)
    finally:
        backend.close()
    return status


def loaded_line(model: LoadedModel) -> str:
    """`llama3.2:latest (context 8192, 3.4 GB in VRAM, until 14:05)`."""
    parts = [f"context {model.context_length}" if model.context_length else None]
    if model.size_vram is not None:
        parts.append(f"{model.size_vram / GB:.1f} GB in VRAM")
    if model.expires_at is not None:
        parts.append(f"until {_local(model.expires_at)}")
    return f"{model.name} ({', '.join(p for p in parts if p)})"


def _model_json(model: ModelInfo, loaded: LoadedModel | None) -> dict[str, Any]:
    return {
        "name": model.name,
        "size": model.size,
        "parameter_size": model.parameter_size,
        "quantisation": model.quantisation,
        "context_length": model.context_length,
        "capabilities": None if model.capabilities is None else sorted(model.capabilities),
        "loaded": None
        if loaded is None
        else {
            "context_length": loaded.context_length,
            "size": loaded.size,
            "size_vram": loaded.size_vram,
            "expires_at": loaded.expires_at.isoformat() if loaded.expires_at else None,
        },
    }


def _local(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")

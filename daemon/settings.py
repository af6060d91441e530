"""Settings, resolved once at the edge: environment over `gristmill.toml` over defaults.

No other module reads the environment; everything else receives a `Settings` object.
"""

from __future__ import annotations

import os
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from daemon.errors import SettingsError
from daemon.roles import Role

DEFAULT_OLLAMA_URL = "http://127.0.0.1:11434"
DEFAULT_CONFIG_NAME = "gristmill.toml"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class Settings(BaseSettings):
    """Every knob of the daemon; see SPEC §3 and the README's settings table."""

    model_config = SettingsConfigDict(env_prefix="GRISTMILL_", extra="forbid")

    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("gristmill")))
    database_url: str | None = None
    workflows: Path = Path("workflows")
    ollama_url: str = Field(default_factory=lambda: os.environ.get("OLLAMA_HOST") or DEFAULT_OLLAMA_URL)
    model: str = "llama3.2"
    concurrency: int = Field(2, ge=1, le=256)
    allow_remote_model: bool = False
    log_format: LogFormat = LogFormat.TEXT
    max_attempts: int = Field(3, ge=1, le=100)
    model_timeout: float = Field(300.0, gt=0, description="seconds one model call may take")
    connect_timeout: float = Field(5.0, gt=0)
    rescan_seconds: float = Field(300.0, ge=0, description="periodic rescan of watched folders; 0 = off")
    backoff_max_seconds: float = Field(60.0, gt=0)
    stop_timeout: float = Field(30.0, ge=0)
    lease_seconds: float = Field(30.0, gt=0, description="a running run whose lease lapsed returns to the queue")
    heartbeat_seconds: float = Field(10.0, gt=0, description="how often running runs' leases are renewed")
    # Set by systemd for Type=notify units (no GRISTMILL_ prefix): where to send READY=1 and the watchdog.
    notify_socket: str | None = Field(None, validation_alias="NOTIFY_SOCKET")
    watchdog_usec: int | None = Field(None, validation_alias="WATCHDOG_USEC", ge=0)
    watchdog_pid: int | None = Field(None, validation_alias="WATCHDOG_PID")
    max_file_bytes: int = Field(50 * 1024 * 1024, gt=0)
    max_chars: int = Field(200_000, gt=0, description="extracted characters kept per document")
    schedule_grace_seconds: float = Field(
        60.0, gt=0, description="a tick recorded later than this was missed (catch-up policy applies)"
    )
    extract_seconds: float = Field(30.0, gt=0, description="time limit for reading one PDF/DOCX/HTML/e-mail")
    extract_memory_mb: int = Field(1024, ge=64, description="memory limit of the process reading one")
    context_tokens: int = Field(8192, ge=512, description="num_ctx sent for long inputs when a workflow sets none")
    role: Role = Field(Role.ALL, description="all, intake (watch and schedule only) or worker (execute runs only)")

    @field_validator("data_dir", "workflows", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("heartbeat_seconds", mode="after")
    @classmethod
    def _heartbeat_within_lease(cls, value: float, info: ValidationInfo) -> float:
        lease = info.data.get("lease_seconds")
        if lease is not None and value >= lease:
            raise ValueError(f"it must be shorter than lease_seconds ({lease}), or leases lapse while runs are alive")
        return value

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL; SQLite in the data dir unless a URL was given."""
        return self.database_url or f"sqlite:///{self.data_dir / 'gristmill.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = _CONFIG_FILE.get("path")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)


# settings_customise_sources is a classmethod with no per-call argument; load_settings hands it the
# file through this slot, set and cleared under the same call.
_CONFIG_FILE: dict[str, Path | None] = {}


def _config_path(environ: dict[str, str]) -> Path | None:
    named = environ.get("GRISTMILL_CONFIG")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise SettingsError(
                f"GRISTMILL_CONFIG names {path}, which does not exist; create it or unset GRISTMILL_CONFIG",
                path,
            )
        return path
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.is_file() else None


def load_settings(**overrides: Any) -> Settings:
    """Read environment and settings file; raise `SettingsError` in one sentence when invalid."""
    path = _config_path(dict(os.environ))
    if path is not None:
        try:
            tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
            raise SettingsError(f"{path} is not valid TOML ({exc}); fix the file", path) from exc
    _CONFIG_FILE["path"] = path
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        origin = f" in {path}" if path else ""
        raise SettingsError(
            f"setting '{key}'{origin} (env GRISTMILL_{key.upper()}) is invalid: {err['msg']}", path
        ) from exc
    finally:
        _CONFIG_FILE.pop("path", None)

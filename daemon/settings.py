"""Settings, resolved once at the edge: environment over `gristmill.toml` over defaults.

No other module reads the environment; everything else receives a `Settings` object.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from daemon import defaults
from daemon import settings_checks as checks
from daemon.costs import Price
from daemon.documents import ReadLimits
from daemon.errors import SettingsError
from daemon.roles import Role
from daemon.web.address import DEFAULT_HTTP, HttpAddress, parse_http

DEFAULT_CONFIG_NAME = "gristmill.toml"
LOCAL_SERVER = "local"
_SERVER_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Ollama's keep_alive: seconds, or Go durations such as 30m, 1h30m, 90s; negative keeps the model loaded.
_KEEP_ALIVE = re.compile(r"-?(\d+|(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+)")


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def _with_scheme(url: str) -> str:
    """A bare OLLAMA_HOST (`0.0.0.0`, `127.0.0.1:11434`) as the URL Ollama's own client makes of it."""
    url = url.strip().rstrip("/")
    if "://" in url:
        return url
    return f"http://{url}" if re.search(r":\d+$", url) else f"http://{url}:11434"


class ServerConfig(BaseModel):
    """One model server: `[servers.NAME]` in gristmill.toml, or an entry of GRISTMILL_SERVERS (JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""  # the table's key; filled in by Settings
    kind: str = "ollama"  # a registered ServerKind (daemon/llm/servers.py)
    url: str
    slots: int = Field(defaults.SERVER_SLOTS, ge=1, le=256)
    # The NAME of an environment variable holding the API key; the key itself is never stored or logged.
    api_key_env: str | None = None
    _url_setting: str = PrivateAttr("")  # where the user sets the URL, for messages

    @property
    def url_setting(self) -> str:
        """The setting a user edits to change this server's URL."""
        return self._url_setting or f"servers.{self.name}.url"

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.fullmatch(value):
            raise ValueError(
                f"'{value}' is not an environment variable name; give the NAME of the variable, not the key"
            )
        return value

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not re.match(r"https?://[^/\s]+", value):
            raise ValueError(f"'{value}' is not an http:// or https:// URL")
        return value.rstrip("/")


class Settings(BaseSettings):
    """Every knob of the daemon; see SPEC §3 and the README's settings table."""

    model_config = SettingsConfigDict(env_prefix="GRISTMILL_", extra="forbid")

    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("gristmill")))
    database_url: str | None = None
    workflows: Path = Path("workflows")
    ollama_url: str = Field(
        default_factory=lambda: os.environ.get("OLLAMA_HOST") or defaults.OLLAMA_URL, validate_default=True
    )
    # Named model servers; none: one server `local` at ollama_url with `concurrency` slots.
    servers: dict[str, ServerConfig] = {}
    model: str = defaults.MODEL
    concurrency: int = Field(defaults.CONCURRENCY, ge=1, le=256)
    allow_remote_model: bool = False
    # Ranges the user declares local beyond the built-in private ones (a Tailscale or WireGuard net).
    local_networks: Annotated[tuple[checks.Network, ...], NoDecode] = ()
    log_format: LogFormat = LogFormat.TEXT
    max_attempts: int = Field(defaults.MAX_ATTEMPTS, ge=1, le=100)
    model_timeout: float = Field(defaults.MODEL_TIMEOUT, gt=0)
    connect_timeout: float = Field(defaults.CONNECT_TIMEOUT, gt=0)
    rescan_seconds: float = Field(defaults.RESCAN_SECONDS, ge=0)
    backoff_max_seconds: float = Field(defaults.BACKOFF_MAX_SECONDS, gt=0)
    stop_timeout: float = Field(defaults.STOP_TIMEOUT, ge=0)
    database_timeout: float = Field(defaults.DATABASE_TIMEOUT, gt=0)
    progress_seconds: float = Field(defaults.PROGRESS_SECONDS, ge=0)
    lease_seconds: float = Field(defaults.LEASE_SECONDS, gt=0)
    heartbeat_seconds: float = Field(defaults.HEARTBEAT_SECONDS, gt=0)
    # Set by systemd for Type=notify units (no GRISTMILL_ prefix): where to send READY=1 and the watchdog.
    notify_socket: str | None = Field(None, validation_alias="NOTIFY_SOCKET")
    watchdog_usec: int | None = Field(None, validation_alias="WATCHDOG_USEC", ge=0)
    watchdog_pid: int | None = Field(None, validation_alias="WATCHDOG_PID")
    max_file_bytes: int = Field(defaults.MAX_FILE_BYTES, gt=0)
    max_chars: int = Field(defaults.MAX_CHARS, gt=0)
    schedule_grace_seconds: float = Field(defaults.SCHEDULE_GRACE_SECONDS, gt=0)
    scan_pages: int = Field(defaults.SCAN_PAGES, ge=0)
    extract_seconds: float = Field(defaults.EXTRACT_SECONDS, gt=0)
    extract_memory_mb: int = Field(defaults.EXTRACT_MEMORY_MB, ge=64)
    context_tokens: int = Field(defaults.CONTEXT_TOKENS, ge=512)
    keep_alive: str = defaults.KEEP_ALIVE
    # `gristmill costs`: price rows added to (or overriding) the shipped table, and the APIs to compare with.
    prices: dict[str, Price] = {}
    cost_compare: list[str] = list(defaults.COST_COMPARE)
    role: Role = Role.ALL  # all, intake (triggers only) or worker (execute runs only); `run --role` overrides it
    http: str = Field(DEFAULT_HTTP, description="where the dashboard, /metrics and hooks listen: HOST:PORT or off")
    http_token: SecretStr | None = Field(None, min_length=16, description="needed by every request when set")
    # Set by systemd when stderr goes to the journal: "DEVICE:INODE" of that stream.
    journal_stream: str | None = Field(None, validation_alias="JOURNAL_STREAM")

    @field_validator("http", mode="after")
    @classmethod
    def _http_address(cls, value: str) -> str:
        parse_http(value)  # raises ValueError with the sentence
        return value

    @property
    def http_address(self) -> HttpAddress | None:
        """Where the dashboard and the hooks listen; None when it is off."""
        return parse_http(self.http)

    @field_validator("servers", mode="after")
    @classmethod
    def _named(cls, value: dict[str, ServerConfig]) -> dict[str, ServerConfig]:
        for name in value:
            if not _SERVER_NAME.fullmatch(name):
                raise ValueError(f"'{name}' is not a server name; use lowercase letters, digits, - and _")
        return {name: server.model_copy(update={"name": name}) for name, server in value.items()}

    @field_validator("model", mode="after")
    @classmethod
    def _pinned_server_exists(cls, value: str, info: ValidationInfo) -> str:
        names = set(info.data.get("servers") or ()) or {LOCAL_SERVER}
        model, at, server = value.rpartition("@")
        if at and server not in names:
            raise ValueError(f"'{server}' after @ is not a configured server ({', '.join(sorted(names))})")
        return value

    @field_validator("keep_alive", mode="before")
    @classmethod
    def _keep_alive(cls, value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(int(value))
        if isinstance(value, str) and not _KEEP_ALIVE.fullmatch(value.strip()):
            raise ValueError(f"'{value}' is not a duration; use seconds or a duration such as 30m, 2h or -1 (forever)")
        return value

    @field_validator("data_dir", "workflows", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("ollama_url", mode="after")
    @classmethod
    def _model_url(cls, value: str) -> str:
        return checks.model_url(value)

    @field_validator("database_url", mode="after")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        return checks.database_url(value)

    @field_validator("local_networks", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        return checks.networks(value)

    @field_validator("heartbeat_seconds", mode="after")
    @classmethod
    def _heartbeat_within_lease(cls, value: float, info: ValidationInfo) -> float:
        lease = info.data.get("lease_seconds")
        if lease is not None and value >= lease:
            raise ValueError(f"it must be shorter than lease_seconds ({lease}), or leases lapse while runs are alive")
        return value

    @property
    def model_servers(self) -> dict[str, ServerConfig]:
        """Every model server by name: the `servers` table, else `local` at ollama_url."""
        if self.servers:
            return dict(self.servers)
        url = _with_scheme(self.ollama_url)
        local = ServerConfig(name=LOCAL_SERVER, kind="ollama", url=url, slots=self.concurrency)
        local._url_setting = "GRISTMILL_OLLAMA_URL"
        return {LOCAL_SERVER: local}

    @property
    def keep_alive_value(self) -> int | str:
        """keep_alive as Ollama takes it: a number of seconds, or a duration string."""
        text = self.keep_alive.strip()
        return int(text) if text.lstrip("-").isdigit() else text

    @property
    def read_limits(self) -> ReadLimits:
        """How documents are read: characters kept, and the parser's time and memory."""
        return ReadLimits(self.max_chars, self.extract_seconds, self.extract_memory_mb)

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
            sources.append(_FileSource(settings_cls, toml_file=toml_path))
        return tuple(sources)


class _FileSource(TomlConfigSettingsSource):
    """gristmill.toml; its `[servers]` tables give way to GRISTMILL_SERVERS as a whole (not merged with it)."""

    def __call__(self) -> dict[str, Any]:
        data = super().__call__()
        if os.environ.get("GRISTMILL_SERVERS"):
            data.pop("servers", None)
        return data


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


def read_secret(name: str) -> str | None:
    """The value of the environment variable `name` that a workflow names for a secret (`*_env`), or None.

    Secrets are read here, at the moment they are needed, so that the environment stays this module's
    to read; callers never store, log or record what it returns.
    """
    return os.environ.get(name) or None


def load_settings(**overrides: Any) -> Settings:
    """Read environment and settings file; raise `SettingsError` in one sentence when invalid."""
    environ = dict(os.environ)
    path = _config_path(environ)
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
            raise SettingsError(f"{path} is not valid TOML ({exc}); fix the file", path) from exc
        checks.unknown_keys(data, file_keys(), path)
    _CONFIG_FILE["path"] = path
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise _invalid(exc, environ, data, path) from exc
    finally:
        _CONFIG_FILE.pop("path", None)
    if settings.database_url is None:
        problem = checks.data_dir_problem(settings.data_dir)
        if problem:
            origin = _origin("data_dir", environ, data, path)
            raise SettingsError(
                f"setting 'data_dir' {origin} is invalid: {problem}; choose a folder you can write", path
            )
    return settings


def _invalid(exc: ValidationError, environ: dict[str, str], data: dict[str, Any], path: Path | None) -> SettingsError:
    """One sentence for the first problem: the setting (or the key inside it), where it came from, what is wrong."""
    errors = exc.errors()
    # A misspelt key inside a table also makes the key meant "missing": name the misspelling, with the fix.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(str(part) for part in err["loc"])
    key = loc[0] if loc else ""
    inside = err["type"] in ("missing", "extra_forbidden") and len(loc) > 1  # the table that lacks or has the key
    where = ".".join(loc[:-1] if inside else loc)
    reason = checks.explain(err, Settings.model_fields.get(key))
    if err["type"] == "extra_forbidden":
        meant = [e["loc"][-1] for e in errors if e["type"] == "missing" and tuple(map(str, e["loc"][:-1])) == loc[:-1]]
        close = difflib.get_close_matches(loc[-1], [str(m) for m in meant], n=1)
        reason += f" (did you mean '{close[0]}'?)" if close else ""
    return SettingsError(f"setting '{where}' {_origin(key, environ, data, path)} is invalid: {reason}", path)


def file_keys() -> list[str]:
    """The keys `gristmill.toml` may set: every setting except those systemd passes in the environment."""
    return [name for name, field in Settings.model_fields.items() if field.validation_alias is None]


def _env_name(key: str) -> str:
    alias = Settings.model_fields[key].validation_alias if key in Settings.model_fields else None
    return alias if isinstance(alias, str) else f"GRISTMILL_{key.upper()}"


def _origin(key: str, environ: dict[str, str], data: dict[str, Any], path: Path | None) -> str:
    """Where the value of setting `key` came from, in words: an env var, the file, or the default."""
    env = _env_name(key)
    if env in environ:
        return f"from the environment ({env})"
    if key in data:
        return f"in {path}"
    if key == "ollama_url" and environ.get("OLLAMA_HOST"):
        return "from the environment (OLLAMA_HOST)"
    return f"(its default; set {env})"

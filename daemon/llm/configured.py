"""The configured model servers, built: each one's kind checked, its URL past the remote guard, its backend made."""

from __future__ import annotations

from daemon import defaults
from daemon.engine.outage import OutageGate
from daemon.errors import SettingsError
from daemon.llm.router import Router
from daemon.llm.servers import ServerKind
from daemon.llm.upstream import Upstream
from daemon.netguard import check_url
from daemon.plugins import registry
from daemon.settings import ServerConfig, Settings


def kind_of(config: ServerConfig) -> ServerKind:
    """The registered kind of a server; SettingsError naming the known kinds otherwise."""
    kinds = registry().servers
    if config.kind not in kinds:
        raise SettingsError(
            f"server '{config.name}' has kind '{config.kind}', which is not a model-server kind "
            f"(known: {', '.join(kinds)})"
        )
    return kinds[config.kind]


def guard(config: ServerConfig, settings: Settings) -> None:
    """The privacy guard for one server's URL (raises RemoteRefused)."""
    check_url(
        config.url,
        allowed=settings.allow_remote_model,
        what=f"the model server '{config.name}' at",
        how_to_allow="GRISTMILL_ALLOW_REMOTE_MODEL=true",
        local_networks=settings.local_networks,
    )


def upstream(config: ServerConfig, settings: Settings) -> Upstream:
    """One server, ready for the router: guarded, its backend built, its own outage state."""
    kind = kind_of(config)
    guard(config, settings)
    gate = OutageGate(cap=settings.backoff_max_seconds, name=config.name, url=config.url)
    backend = kind.backend(config, settings)
    return Upstream(config, kind, backend, gate, list_seconds=defaults.MODEL_LIST_SECONDS)


def build_router(settings: Settings) -> Router:
    """Every server the settings name (or `local`), behind one router."""
    upstreams = [upstream(config, settings) for config in settings.model_servers.values()]
    return Router(upstreams, model_timeout=settings.model_timeout, cap=settings.backoff_max_seconds)

"""`gristmill pull MODEL [--server S]`: Ollama's pull with a progress bar per layer (bytes, rate, time left)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from daemon.errors import UsageError
from daemon.llm.configured import guard, kind_of
from daemon.llm.servers import ServerKind
from daemon.settings import ServerConfig, Settings


class CannotPull(UsageError):
    """The chosen server's kind gets its models some other way (exit 2)."""


def choose_server(settings: Settings, name: str | None) -> tuple[ServerConfig, ServerKind]:
    """The server to pull onto: the named one, else the only one (or the only one that pulls)."""
    servers = settings.model_servers
    if name is not None:
        if name not in servers:
            raise UsageError(f"no model server named '{name}' (servers: {', '.join(servers)})")
        config = servers[name]
    elif len(servers) == 1:
        (config,) = servers.values()
    else:
        pulling = [c for c in servers.values() if kind_of(c).pulls]
        if len(pulling) != 1:
            raise UsageError(f"say which server to pull onto: --server {' | '.join(servers)}")
        (config,) = pulling
    kind = kind_of(config)
    if not kind.pulls:
        raise CannotPull(
            f"server '{config.name}' is {kind.title}, which gristmill cannot pull onto: {kind.models_hint}"
        )
    return config, kind


def pull(settings: Settings, model: str, server: str | None, console: Console) -> str:
    """Pull `model` onto the server with a progress bar; return the server's name. Errors raise."""
    config, kind = choose_server(settings, server)
    guard(config, settings)
    backend = kind.backend(config, settings)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    layers: dict[str, TaskID] = {}
    said = None
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            progress.console.print(f"pulling {model} onto {config.name} ({config.url})")
            for line in backend.pull(model):
                if line.digest and line.total:  # a layer: one bar each
                    if line.digest not in layers:
                        layers[line.digest] = progress.add_task(line.status, total=line.total)
                    progress.update(layers[line.digest], completed=line.completed or 0)
                elif line.status != said:  # a step: "pulling manifest", "verifying sha256 digest", …
                    progress.console.print(line.status)
                    said = line.status
    finally:
        backend.close()
    return config.name

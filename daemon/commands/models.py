"""`gristmill models [--json]`: each server, up or down, its version and its models."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

from daemon.commands.survey import GB, ServerStatus, loaded_line, survey
from daemon.settings import Settings
from daemon.words import count


def server_statuses(settings: Settings) -> list[ServerStatus]:
    """Every configured server, asked in detail."""
    return [survey(config, settings, detailed=True) for config in settings.model_servers.values()]


def models_json(statuses: list[ServerStatus]) -> list[dict[str, Any]]:
    """What `models --json` prints: one object per server."""
    return [status.as_json() for status in statuses]


def print_models(console: Console, statuses: list[ServerStatus], echo: Callable[[str], None]) -> None:
    """Each server's line, then a table of its models."""
    for status in statuses:
        config = status.config
        if not status.up:
            echo(f"{config.name} ({config.kind}, {config.url}): down: {status.error}")
            continue
        version = f"version {status.version}, " if status.version else ""
        slots, models = count(config.slots, "slot"), count(len(status.models), "model")
        echo(f"{config.name} ({config.kind}, {config.url}): up, {version}{slots}, {models}")
        if status.models:
            console.print(_table(status))
        for model in status.loaded:
            echo(f"  loaded now: {loaded_line(model)}")


def _table(status: ServerStatus) -> Table:
    table = Table(box=None, pad_edge=False, padding=(0, 2, 0, 2))
    table.add_column("model", overflow="fold", ratio=3)
    for column in ("size", "params", "quant", "context", "capabilities", "loaded"):
        table.add_column(column, no_wrap=True)
    loaded = {m.name for m in status.loaded}
    for model in status.models:
        table.add_row(
            model.name,
            f"{model.size / GB:.1f} GB" if model.size else "—",
            model.parameter_size or "—",
            model.quantisation or "—",
            str(model.context_length or "—"),
            ", ".join(sorted(model.capabilities)) if model.capabilities is not None else "—",
            "yes" if model.name in loaded else "",
        )
    return table

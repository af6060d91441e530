"""`gristmill nodes`: the processes working on this database, whether they are alive, what they hold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.table import Table

from daemon.nodes import NodeState, node_json, node_state
from daemon.settings import Settings
from daemon.store.db import make_engine
from daemon.store.migrate import upgrade
from daemon.store.nodes import NodeRecord, NodeStore

RECENT = timedelta(days=1)
"""Nodes that stopped longer ago than this are listed only with --all."""


@dataclass(frozen=True)
class NodeRow:
    """A node and its state as seen now."""

    node: NodeRecord
    state: NodeState

    def json(self) -> dict[str, Any]:
        return node_json(self.node, self.state)


def node_rows(settings: Settings, *, everything: bool = False, now: datetime | None = None) -> list[NodeRow]:
    """The nodes of the configured database: up, gone, and (recently, or with `everything`) stopped."""
    now = now or datetime.now(UTC)
    engine = make_engine(settings.db_url)
    try:
        upgrade(engine)
        found = NodeStore(engine).list()
    finally:
        engine.dispose()
    rows = [NodeRow(node, node_state(node, now, settings.lease_seconds)) for node in found]
    return [row for row in rows if everything or _worth_showing(row, now)]


def _worth_showing(row: NodeRow, now: datetime) -> bool:
    stopped = row.node.stopped_at
    return stopped is None or now - stopped <= RECENT


def nodes_table(rows: list[NodeRow], now: datetime | None = None) -> Table:
    """The rows as a table for the terminal."""
    now = now or datetime.now(UTC)
    table = Table("node", "host", "pid", "role", "state", "started", "last heartbeat", "runs in hand")
    style = {NodeState.UP: "green", NodeState.GONE: "red", NodeState.STOPPED: "dim"}
    for row in rows:
        node = row.node
        table.add_row(
            node.id, node.host, str(node.pid), node.role.value, f"[{style[row.state]}]{row.state.value}[/]",
            node.started_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"), _ago(now - node.heartbeat_at),
            str(node.runs_in_hand),
        )  # fmt: skip
    return table


def _ago(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"

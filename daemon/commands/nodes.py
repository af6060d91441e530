"""`gristmill nodes`: the processes working on this database, whether they are alive, what they hold."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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
        found = NodeStore(engine).all_nodes()
    finally:
        engine.dispose()
    rows = [NodeRow(node, node_state(node, now, settings.lease_seconds)) for node in found]
    return [row for row in rows if everything or _worth_showing(row, now)]


def _worth_showing(row: NodeRow, now: datetime) -> bool:
    stopped = row.node.stopped_at
    return stopped is None or now - stopped <= RECENT


NODE_COLUMNS = ("node", "host", "pid", "role", "state", "started", "last heartbeat", "runs in hand")


def node_table_rows(rows: list[NodeRow], now: datetime | None = None) -> list[list[str]]:
    """The rows as table cells (NODE_COLUMNS), for `views.print_table`."""
    now = now or datetime.now(UTC)
    return [
        [
            row.node.id, row.node.host, str(row.node.pid), row.node.role.value, row.state.value,
            row.node.started_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"), _ago(now - row.node.heartbeat_at),
            str(row.node.runs_in_hand),
        ]
        for row in rows
    ]  # fmt: skip


def _ago(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds}s ago"
    if seconds < 7200:
        return f"{seconds // 60}m ago"
    return f"{seconds // 3600}h ago"

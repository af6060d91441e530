"""The `nodes` table: each `gristmill run` on this database, its heartbeat, and the runs it holds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, bindparam, delete, func, select, update

from daemon.domain import RunStatus
from daemon.roles import Role
from daemon.store.db import reading, writing
from daemon.store.runs import utcnow
from daemon.store.tables import nodes, runs

FORGET_AFTER = timedelta(days=7)
"""Rows of nodes that stopped (or went silent) longer ago than this are removed at the next start."""

# Every heartbeat: built once (building a statement and its cache key cost about as much as running it).
_BEAT = update(nodes).where(nodes.c.id == bindparam("b_id"), nodes.c.stopped_at.is_(None))


@dataclass(frozen=True)
class NodeRecord:
    """One node as recorded, with the number of runs it holds under its lease now."""

    id: str
    host: str
    pid: int
    role: Role
    version: str
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    runs_in_hand: int = 0


class NodeStore:
    """Registers nodes, records their heartbeats and lists them; safe to share between threads."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow) -> None:
        self._engine, self._clock = engine, clock

    def register(self, node_id: str, *, host: str, pid: int, role: Role, version: str) -> None:
        """Record a node that starts now; rows of nodes long gone are forgotten on the way."""
        now = self._clock()
        values = {
            "id": node_id, "host": host, "pid": pid, "role": Role(role).value, "version": version,
            "started_at": now, "heartbeat_at": now, "stopped_at": None,
        }  # fmt: skip
        old = func.coalesce(nodes.c.stopped_at, nodes.c.heartbeat_at) < now - FORGET_AFTER
        with writing(self._engine) as conn:
            conn.execute(delete(nodes).where(old))
            conn.execute(nodes.insert().values(values))

    def beat(self, node_id: str) -> bool:
        """The node is alive now; False when it is not registered (or marked stopped)."""
        with writing(self._engine, one_statement=True) as conn:
            return conn.execute(_BEAT, {"b_id": node_id, "heartbeat_at": self._clock()}).rowcount == 1

    def stopped(self, node_id: str) -> None:
        """The node stopped cleanly."""
        now = self._clock()
        with writing(self._engine, one_statement=True) as conn:
            conn.execute(update(nodes).where(nodes.c.id == node_id).values(stopped_at=now, heartbeat_at=now))

    def all_nodes(self) -> list[NodeRecord]:
        """Every recorded node, the most recently started first."""
        held = (
            select(runs.c.lease_owner, func.count().label("n"))
            .where(runs.c.status == RunStatus.RUNNING.value)
            .group_by(runs.c.lease_owner)
            .subquery()
        )
        stmt = (
            select(*nodes.c, func.coalesce(held.c.n, 0).label("runs_in_hand"))
            .outerjoin(held, held.c.lease_owner == nodes.c.id)
            .order_by(nodes.c.started_at.desc(), nodes.c.id)
        )
        with reading(self._engine) as conn:
            rows = conn.execute(stmt).all()
        return [NodeRecord(**{**row._mapping, "role": Role(row.role)}) for row in rows]

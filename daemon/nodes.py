"""This process as a node of the database: its id, registration, heartbeat, and how nodes look to users."""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine

import daemon
from daemon.errors import StoreError
from daemon.roles import Role
from daemon.store.nodes import NodeRecord, NodeStore

log = logging.getLogger("gristmill")


class NodeState(StrEnum):
    UP = "up"
    GONE = "gone"  # no heartbeat for longer than a lease: dead, or cut off from the database
    STOPPED = "stopped"


class Presence:
    """This `gristmill run` as a row of `nodes`; its id is the lease owner of every run it takes."""

    def __init__(self, engine: Engine, role: Role, node_id: str) -> None:
        self.role = Role(role)
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.id = node_id
        self._store = NodeStore(engine)

    def register(self) -> None:
        """Say that this node works on the database from now on."""
        self._store.register(self.id, host=self.host, pid=self.pid, role=self.role, version=daemon.__version__)

    def beat(self) -> None:
        """Called with the worker pool's heartbeat: this node is alive."""
        self._store.beat(self.id)

    def stopped(self) -> None:
        """Called on a clean exit; a database that is away then only costs the row its `stopped` mark."""
        try:
            self._store.stopped(self.id)
        except StoreError as exc:
            log.warning("could not mark node %s stopped (%s); `gristmill nodes` will show it gone", self.id, exc)


def node_state(node: NodeRecord, now: datetime, lease_seconds: float) -> NodeState:
    """Stopped when it said so; gone when its heartbeat is older than a lease; up otherwise."""
    if node.stopped_at is not None:
        return NodeState.STOPPED
    if now - node.heartbeat_at > timedelta(seconds=lease_seconds):
        return NodeState.GONE
    return NodeState.UP


def node_json(node: NodeRecord, state: NodeState) -> dict[str, Any]:
    """A node as `gristmill nodes --json` prints it."""
    return {
        "id": node.id,
        "host": node.host,
        "pid": node.pid,
        "role": node.role.value,
        "version": node.version,
        "state": state.value,
        "started": node.started_at.isoformat(),
        "last_heartbeat": node.heartbeat_at.isoformat(),
        "stopped": node.stopped_at.isoformat() if node.stopped_at else None,
        "runs_in_hand": node.runs_in_hand,
    }

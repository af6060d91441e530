"""Model calls held in memory until their run's next write, which stores them in its own transaction.

Recording each call in a transaction of its own cost one of the six write transactions of a run
(BENCHMARKS.md, "The write path"). A call's record now rides with the run's next fenced write by
its worker: the outputs saved before the next model call or with a route's or write's intent, the
finish, or a release (never the heartbeat's lease renewal, whose thread would race the worker).

What a SIGKILL can lose: the records of calls whose answers were not stored either (no step output
that used them was saved, so the retry asks again). A stored output never lacks the calls that
produced it: both are written by one transaction (on PostgreSQL one statement after the other,
the calls first). Nothing acknowledged is lost: no file was touched, no run ended and nothing was
reported on the strength of a call whose record is not stored.
"""

from __future__ import annotations

import threading
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from daemon.domain import ModelCall
from daemon.store.tables import model_calls

_CALL_VALUES = tuple(f.name for f in fields(ModelCall) if f.name not in ("id", "attempt"))
_INSERT = model_calls.insert()


def call_values(run_id: int, call: ModelCall, attempt: int, now: datetime) -> dict[str, Any]:
    """The model_calls row of one call of run `run_id`."""
    values = {name: getattr(call, name) for name in _CALL_VALUES}
    values.update(run_id=run_id, attempt=attempt, options=call.options or {})
    values["started_at"] = call.started_at or now
    return values


class PendingCalls:
    """Rows of model calls per run, not yet stored; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[int, list[dict[str, Any]]] = {}

    def add(self, run_id: int, values: dict[str, Any]) -> None:
        """Hold one call's row until the run's next write."""
        with self._lock:
            self._held.setdefault(run_id, []).append(values)

    def take(self, run_id: int) -> list[dict[str, Any]]:
        """The run's held rows, in the order the calls were made; they are no longer held."""
        if not self._held:  # the common case of a write with nothing held: no lock taken
            return []
        with self._lock:
            return self._held.pop(run_id, [])

    def put_back(self, run_id: int, rows: list[dict[str, Any]]) -> None:
        """The write that was to store `rows` failed: hold them again, before any held since."""
        if rows:
            with self._lock:
                self._held[run_id] = rows + self._held.get(run_id, [])


def insert_calls(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Store the rows in the caller's transaction (IntegrityError when their run no longer exists)."""
    if rows:
        conn.execute(_INSERT, rows)

"""SQLite's hot statements run on the driver's cursor, compiled once by SQLAlchemy.

A run's writes (its enqueue, claim, model calls, intents and finish) are a few statements each, and
SQLAlchemy's generic execution of one (the compiled cache's lookup, its parameters built anew, the
execution context, the result's set-up, the events) cost about twice what SQLite spent running
it (BENCHMARKS.md, "The write path" and the fourth round). Here the same Core statement is compiled once per shape; each
execution only orders the parameters, runs them through the very bind processors the Core path
uses (the stored values are the same, byte for byte) and hands them to the `sqlite3` cursor of the
caller's connection, in the caller's transaction. Rows read back go through the columns' own result
processors. PostgreSQL keeps the Core path: its driver and types differ, and it is not this hot.

A failure the driver raises is wrapped and translated as SQLAlchemy's handle_error hook does for
the Core path (store/failures.py): the same exception classes, the same one-sentence StoreError.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Column, Connection
from sqlalchemy.engine import Dialect

from daemon.domain import RunStatus
from daemon.store.db import driver
from daemon.store.failures import driver_failure as failure
from daemon.store.statements import RUN_COLUMNS, claim_statement, fenced_update, insert_absent_statement
from daemon.store.tables import model_calls, runs

_Processor = Callable[[Any], Any] | None


class Prepared:
    """A Core statement compiled once for SQLite: its SQL, and how to lay out and convert its parameters.

    `column_keys`: the parameters an INSERT or UPDATE sets (as for `Connection.execute`). `expand`:
    how many values each expanding IN parameter gets in this shape. `returns`: the columns of its
    RETURNING, whose rows `rows` converts as the Core path does.
    """

    def __init__(
        self,
        stmt: Any,
        dialect: Dialect,
        *,
        column_keys: Sequence[str] | None = None,
        expand: dict[str, int] | None = None,
        returns: Sequence[Column[Any]] = (),
    ) -> None:
        compiled = stmt.compile(dialect=dialect, column_keys=list(column_keys) if column_keys is not None else None)
        # The values of the binds the statement holds itself (literals such as a status or LIMIT 1).
        fixed = compiled.construct_params(_check=False)
        sql, order = compiled.string, list(compiled.positiontup or ())
        spread: dict[str, tuple[str, int]] = {}
        if expand:
            dummies = {name: [None] * count for name, count in expand.items()}
            state = compiled.construct_expanded_state({**fixed, **dummies})
            sql, order = state.statement, list(state.positiontup or ())
            for name, count in expand.items():
                spread |= {f"{name}_{i + 1}": (name, i) for i in range(count)}
        processors: dict[str, Any] = dict(compiled._bind_processors)  # what construct_params' caller applies
        self.sql = sql
        self._slots: list[tuple[str, int, bool, _Processor, Any]] = []
        for key in order:
            name, index = spread.get(key, (key, -1))
            # A bind the statement holds a value for (required=False) is a constant; the others are the caller's.
            constant = name in compiled.binds and not compiled.binds[name].required
            processor = processors.get(name)
            if constant and processor is not None:
                self._slots.append((name, index, True, None, processor(fixed.get(key))))
            else:
                self._slots.append((name, index, constant, processor, fixed.get(key)))
        # Each column's name and result processor (None: the driver's value as it is).
        self._columns: tuple[tuple[str, _Processor], ...] = tuple(
            (column.key, column.type._cached_result_processor(dialect, None)) for column in returns
        )

    def parameters(self, values: dict[str, Any]) -> list[Any]:
        """The positional parameters for `values` (by bind name), converted by the binds' processors."""
        out = []
        for name, index, constant, processor, fixed in self._slots:
            if constant:
                value = fixed
            else:
                value = values[name] if index < 0 else values[name][index]
            out.append(value if processor is None else processor(value))
        return out

    def execute(self, conn: Connection, values: dict[str, Any]) -> sqlite3.Cursor:
        """Run the statement with `values` in `conn`'s transaction; the driver's cursor."""
        params: Any = values
        try:
            params = self.parameters(values)
            return driver(conn).execute(self.sql, params)
        except Exception as exc:  # a bind processor's refusal (a naive datetime) too, as on the Core path
            raise failure(conn, exc, self.sql, params) from exc

    def execute_many(self, conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
        """Run the statement once per row of values, in `conn`'s transaction."""
        params: Any = rows
        try:
            params = [self.parameters(values) for values in rows]
            driver(conn).executemany(self.sql, params)
        except Exception as exc:
            raise failure(conn, exc, self.sql, params) from exc

    def rows(self, conn: Connection, values: dict[str, Any]) -> list[dict[str, Any]]:
        """Run the statement; its RETURNING rows as {column: value}, converted as the Core path does."""
        cursor = self.execute(conn, values)
        try:
            fetched = cursor.fetchall()
        except sqlite3.Error as exc:
            raise failure(conn, exc, self.sql, ()) from exc
        columns = self._columns
        return [
            {name: raw if convert is None else convert(raw) for (name, convert), raw in zip(columns, row, strict=True)}
            for row in fetched
        ]


class HotStatements:
    """The run store's hot statements for one SQLite engine, each shape compiled at its first use.

    A shape is the statement and the parameters it is given (which columns an INSERT or UPDATE sets,
    how many workflows a claim names): a handful per daemon.
    """

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._made: dict[tuple[Any, ...], Prepared] = {}  # two threads compiling one shape both get a good one

    def insert_absent(self, columns: tuple[str, ...]) -> Prepared:
        """`statements.insert_absent_statement(columns)`, returning the new run's id."""
        return self._shape(
            ("insert_absent", columns),
            lambda: Prepared(insert_absent_statement(columns), self._dialect, returns=(runs.c.id,)),
        )

    def claim(self, which: str, names: int) -> Prepared:
        """`statements.claim_statement(which)` on SQLite, with `names` workflows for "among"; returning the run."""
        expand = {"b_names": names} if which == "among" else None
        return self._shape(
            ("claim", which, names),
            lambda: Prepared(claim_statement(which, True), self._dialect, expand=expand, returns=RUN_COLUMNS),
        )

    def fenced(self, target: RunStatus | None, columns: tuple[str, ...]) -> Prepared:
        """`statements.fenced_update(target, …)` setting `columns` (bound values, no SQL expressions)."""
        return self._shape(
            ("fenced", target, columns),
            lambda: Prepared(fenced_update(target, {})[0], self._dialect, column_keys=(*columns, "b_id", "b_owner")),
        )

    def calls(self, columns: tuple[str, ...]) -> Prepared:
        """The INSERT of model calls' rows with `columns`."""
        return self._shape(
            ("calls", columns), lambda: Prepared(model_calls.insert(), self._dialect, column_keys=columns)
        )

    def _shape(self, key: tuple[Any, ...], compile_it: Callable[[], Prepared]) -> Prepared:
        """The statement of this shape, compiled by `compile_it` the first time it is asked for."""
        found = self._made.get(key)
        if found is None:
            found = self._made[key] = compile_it()
        return found

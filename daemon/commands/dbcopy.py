"""`gristmill db copy --to URL`: the whole history into another database (SQLite to PostgreSQL), idempotent.

Every table of the schema is copied, parents before children (so new tables need no change here),
with its ids, in batches ordered by primary key. A row whose primary key is already in the target
is left as it is, so running the copy again copies nothing twice. PostgreSQL's id sequences are moved
past the copied ids afterwards, so the next run recorded there gets a new id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import JSON, Engine, Integer, Table, func, null, select, text, tuple_
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from daemon.errors import StoreError, UsageError
from daemon.store.db import make_engine, reading, writing
from daemon.store.migrate import upgrade
from daemon.store.postgres import postgres_url
from daemon.store.statements import INSERTS
from daemon.store.tables import metadata

MAX_BATCH = 1000
"""Rows per insert; fewer for wide tables, to stay under SQLite's limit of bound parameters."""
_MAX_PARAMETERS = 30_000

# Moves a serial column's sequence past the largest id; a column without a sequence gives NULL, a no-op.
_ADVANCE = "SELECT setval(pg_get_serial_sequence(:table, :column), COALESCE(MAX({column}), 0) + 1, false) FROM {table}"

Advance = Callable[[str, int], None]
"""Told (table name, rows handled in this batch) after each batch."""


@dataclass
class TableCopy:
    """What the copy did to one table."""

    table: str
    rows: int  # in the source
    copied: int = 0  # new in the target

    @property
    def already_there(self) -> int:
        return self.rows - self.copied


def open_pair(source_url: str, target_url: str) -> tuple[Engine, Engine]:
    """Both engines, both databases migrated to the newest schema; the same database twice is refused."""
    if _same(source_url, target_url):
        raise UsageError("the target is the configured database itself; name another one with --to")
    source = make_engine(source_url)
    try:
        upgrade(source)
        target = make_engine(target_url)
    except BaseException:
        source.dispose()
        raise
    try:
        upgrade(target)
    except BaseException:
        source.dispose()
        target.dispose()
        raise
    return source, target


def plan(source: Engine) -> list[TableCopy]:
    """Each table of the schema, parents first, with its number of rows in the source."""
    with reading(source) as conn:
        return [
            TableCopy(table.name, conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in metadata.sorted_tables
        ]


def copy_database(source_url: str, target_url: str, console: Console) -> list[TableCopy]:
    """Copy everything from `source_url` into `target_url` with a progress bar per table; what was done."""
    source, target = open_pair(source_url, target_url)
    try:
        tables = plan(source)
        columns = (TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, console=console) as bar:
            tasks = {copy.table: bar.add_task(copy.table, total=copy.rows) for copy in tables}
            copy_all(source, target, tables, lambda name, rows: bar.advance(tasks[name], rows))
        return tables
    finally:
        source.dispose()
        target.dispose()


def copy_all(source: Engine, target: Engine, tables: list[TableCopy], progress: Advance) -> None:
    """Copy every table in `tables` (as `plan` made them), then advance the target's sequences."""
    for copy in tables:
        table = metadata.tables[copy.table]
        for batch in _batches(source, table):
            copy.copied += _insert(target, table, batch)
            progress(copy.table, len(batch))
    if target.dialect.name == "postgresql":
        _advance_sequences(target)


def _batches(source: Engine, table: Table) -> Iterator[list[dict[str, Any]]]:
    """The rows of `table` in primary-key order, a batch at a time (keyset pagination)."""
    key = list(table.primary_key.columns)
    size = max(1, min(MAX_BATCH, _MAX_PARAMETERS // len(table.columns)))
    last: tuple[Any, ...] | None = None
    while True:
        stmt = select(table).order_by(*key).limit(size)
        if last is not None:
            stmt = stmt.where(tuple_(*key) > tuple_(*last))
        with reading(source) as conn:
            rows = [dict(row._mapping) for row in conn.execute(stmt)]
        if not rows:
            return
        yield rows
        last = tuple(rows[-1][column.name] for column in key)


def _insert(target: Engine, table: Table, rows: list[dict[str, Any]]) -> int:
    """Insert the rows whose primary key the target lacks; how many were new."""
    json_columns = [column.name for column in table.columns if isinstance(column.type, JSON)]
    for row in rows:
        for name in json_columns:
            if row[name] is None:
                row[name] = null()  # SQL NULL stays NULL (not the JSON value null)
    insert = INSERTS[target.dialect.name](table).values(rows)
    key = list(table.primary_key.columns)
    # RETURNING gives the rows really inserted; rowcount is not reliable for multi-row inserts.
    stmt = insert.on_conflict_do_nothing(index_elements=key).returning(*key)
    try:
        with writing(target) as conn:
            return len(conn.execute(stmt).all())
    except IntegrityError as exc:
        raise StoreError(
            f"the target database already holds other {table.name} that clash with the copied ones "
            f"({_first_line(exc)}); copy into an empty database, or into one filled only by earlier copies"
        ) from exc


def _advance_sequences(target: Engine) -> None:
    with writing(target) as conn:
        for table in metadata.sorted_tables:
            key = list(table.primary_key.columns)
            if len(key) == 1 and isinstance(key[0].type, Integer):
                sql = text(_ADVANCE.format(table=table.name, column=key[0].name))
                conn.execute(sql, {"table": table.name, "column": key[0].name})


def _same(first: str, second: str) -> bool:
    def normal(url: str) -> str:
        parsed = make_url(url)
        if parsed.get_backend_name() == "postgresql":
            parsed = postgres_url(parsed)
        return parsed.render_as_string(hide_password=False)

    return normal(first) == normal(second)


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return (str(orig).strip().splitlines() or [type(exc).__name__])[0]

"""A database failure as the one sentence users read, on the Core path and on the driver's own.

SQLAlchemy's handle_error hook (`db.make_engine`) and the statements run on SQLite's driver
(`direct.py`, the writer's BEGIN and COMMIT) both end here, so a locked, full, read-only or
corrupt database reads the same whichever path met it.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine import URL, ExceptionContext
from sqlalchemy.exc import DatabaseError, DBAPIError, InterfaceError, OperationalError, ProgrammingError

from daemon.errors import DatabaseLost, StoreError
from daemon.store.postgres import pg_problem

CORRUPT = (
    "the database {db} is corrupt or not a SQLite database; move it aside (gristmill then starts a new, "
    "empty one) or restore it from a backup"
)
# (what SQLite says, the sentence a user reads ({db}: the database file), whether waiting cannot help)
_SQLITE_PROBLEMS = (
    ("database is locked", "the database stayed locked by another process for too long; try again", False),
    ("database or disk is full", "the disk holding the database {db} is full; free some space", False),
    ("disk i/o error", "the disk holding the database {db} failed to read or write; check it", False),
    ("readonly database", "the database {db} is read-only; check its owner, permissions and file system", False),
    ("unable to open database", "the database {db} cannot be opened; check its folder and permissions", False),
    ("no such table", "the database has no gristmill tables yet; run: gristmill db upgrade", False),
    ("file is not a database", CORRUPT, True),
    ("malformed", CORRUPT, True),
)  # fmt: skip


def store_error(exc: DBAPIError, url: URL | None = None) -> StoreError:
    """One sentence for a database failure the user can act on."""
    detail = (str(exc.orig if exc.orig is not None else exc).strip().splitlines() or [""])[0]
    if url is not None and url.get_backend_name() == "postgresql":
        sentence = pg_problem(detail, url)
        if sentence is not None:
            return StoreError(sentence)
    db = (url.database if url is not None else None) or "file"
    for needle, sentence, fatal in _SQLITE_PROBLEMS:
        if needle in detail.lower():
            return (DatabaseLost if fatal else StoreError)(sentence.format(db=db))
    return StoreError(f"the run database failed ({detail}); check that it is reachable and healthy")


def translate_error(context: ExceptionContext) -> StoreError | None:
    if context.is_pre_ping:
        return None  # the pool saw a dead connection before use: it reconnects, unless it cannot
    exc = context.sqlalchemy_exception
    return None if exc is None else translated(exc, context.engine.url if context.engine is not None else None)


def driver_failure(conn: Connection, exc: Exception, sql: str, params: Any) -> Exception:
    """What the Core path raises for `exc`, raised by the driver itself (or a bind processor) on `conn`.

    SQLAlchemy's wrapper of it (a StatementError for what is not the driver's), or, translated as
    the handle_error hook translates it, the one sentence users read ("database is locked": the
    database stayed locked …). For statements run on the driver's cursor, which bypass that hook.
    """
    hide = conn.engine.hide_parameters
    wrapped = DBAPIError.instance(sql, params, exc, sqlite3.Error, hide_parameters=hide, dialect=conn.dialect)
    return translated(wrapped, conn.engine.url) or wrapped


def translated(exc: Exception, url: URL | None) -> StoreError | None:
    """The one sentence for a database failure SQLAlchemy wrapped, or None to raise `exc` itself."""
    # A bare DatabaseError (not IntegrityError and kin) is SQLite's "not a database" or "malformed";
    # InterfaceError is psycopg's "the connection is closed".
    if isinstance(exc, (OperationalError, InterfaceError)) or type(exc) is DatabaseError:
        return store_error(exc, url)
    # 42P01: PostgreSQL's "relation does not exist" (SQLite's "no such table" is an OperationalError).
    if isinstance(exc, ProgrammingError) and getattr(exc.orig, "sqlstate", None) == "42P01":
        return store_error(exc, url)
    return None

"""Alembic, driven from code: no alembic.ini, works from any cwd and from an installed wheel.

Also a small helper for developers: `python -m daemon.store.migrate revision -m "add x" --autogenerate`.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

import daemon
from daemon.errors import StoreError
from daemon.store.db import is_sqlite, make_engine, reading

# Any fixed number: PostgreSQL processes starting at once take turns on this advisory lock.
_PG_LOCK_KEY = 0x67726973746D


def script_location() -> Path:
    """The migration scripts: the wheel's `daemon/_migrations`, else the repo's `migrations/`."""
    package = Path(daemon.__file__).resolve().parent
    installed = package / "_migrations"
    if (installed / "env.py").is_file():
        return installed
    return package.parent / "migrations"


def make_config(connection: Connection | None = None) -> Config:
    """An Alembic Config pointing at our scripts, optionally bound to a connection."""
    config = Config()
    # Config values go through configparser interpolation: a literal % must be doubled.
    config.set_main_option("script_location", str(script_location()).replace("%", "%%"))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.attributes["connection"] = connection
    return config


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """One locked transaction for migrating; on SQLite with foreign keys off while it runs."""
    with engine.connect() as conn:
        sqlite = is_sqlite(conn)
        if sqlite:
            # Rebuilding a table (batch mode) drops the old one; with foreign keys on, that
            # would cascade-delete every row that refers to it. The PRAGMA is a no-op in a
            # transaction, so it goes on the raw connection before BEGIN.
            _raw(conn, "PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
                yield conn
                if sqlite:
                    _check_foreign_keys(conn)
        finally:
            if sqlite and not conn.invalidated:
                _raw(conn, "PRAGMA foreign_keys=ON")


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database up to `revision`; a no-op when it is there already."""
    with migration_connection(engine) as conn:
        command.upgrade(make_config(conn), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Take the database back to `revision` (default: no tables at all)."""
    with migration_connection(engine) as conn:
        command.downgrade(make_config(conn), revision)


def current(engine: Engine) -> str | None:
    """The revision the database is at, or None for a blank one."""
    with reading(engine) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head() -> str:
    """The newest revision of the chain."""
    found = ScriptDirectory.from_config(make_config()).get_current_head()
    if found is None:
        raise StoreError(f"no migrations found in {script_location()}; the install is incomplete")
    return found


def _raw(conn: Connection, sql: str) -> None:
    conn.connection.driver_connection.execute(sql)  # type: ignore[union-attr]


def _check_foreign_keys(conn: Connection) -> None:
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        tables = sorted({row[0] for row in broken})
        raise StoreError(f"a migration left rows that refer to missing rows in {', '.join(tables)}")


def _new_revision(message: str, autogenerate: bool) -> None:
    """Write the next numbered revision, diffing tables.py against a scratch db at head."""
    number = f"{int(head()) + 1:04d}"
    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(f"sqlite:///{scratch}/scratch.db")
        try:
            upgrade(engine)
            with migration_connection(engine) as conn:
                command.revision(make_config(conn), message=message, autogenerate=autogenerate, rev_id=number)
        finally:
            engine.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    """Developer helper: new revisions, and upgrade/downgrade/current on a given URL."""
    parser = argparse.ArgumentParser(prog="python -m daemon.store.migrate")
    sub = parser.add_subparsers(dest="cmd", required=True)
    rev = sub.add_parser("revision", help="write the next numbered revision")
    rev.add_argument("-m", "--message", required=True)
    rev.add_argument("--autogenerate", action="store_true", help="diff tables.py against head")
    for name in ("upgrade", "downgrade", "current"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--url", required=True, help="SQLAlchemy URL of the database")
        if name != "current":
            cmd.add_argument("revision", nargs="?", default="head" if name == "upgrade" else "base")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    logging.getLogger("alembic.runtime.migration").setLevel(logging.INFO)
    if args.cmd == "revision":
        _new_revision(args.message, args.autogenerate)
        return
    engine = make_engine(args.url)
    if args.cmd == "current":
        print(current(engine) or "(blank)")
    else:
        {"upgrade": upgrade, "downgrade": downgrade}[args.cmd](engine, args.revision)


if __name__ == "__main__":
    main()

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
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

import daemon
from daemon.errors import StoreError
from daemon.store.db import is_sqlite, make_engine, reading

if TYPE_CHECKING:
    from alembic.config import Config

# The newest revision of the chain (`head()` reads it from the scripts; a test keeps the two equal:
# a new revision changes it).
# Every start-up upgrades, and a database already there needs nothing from Alembic: comparing with
# this first spares the daemon Alembic's import, about a tenth of a second of its start-up.
HEAD = "0008"

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
    from alembic.config import Config

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
    if revision == "head" and _stamped(engine) == HEAD:
        return
    from alembic import command

    with migration_connection(engine) as conn:
        command.upgrade(make_config(conn), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    """Take the database back to `revision` (default: no tables at all)."""
    from alembic import command

    with migration_connection(engine) as conn:
        command.downgrade(make_config(conn), revision)


def current(engine: Engine) -> str | None:
    """The revision the database is at, or None for a blank one."""
    from alembic.runtime.migration import MigrationContext

    with reading(engine) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head() -> str:
    """The newest revision of the chain."""
    from alembic.script import ScriptDirectory

    found = ScriptDirectory.from_config(make_config()).get_current_head()
    if found is None:
        raise StoreError(f"no migrations found in {script_location()}; the install is incomplete")
    return found


def _stamped(engine: Engine) -> str | None:
    """The revision the database says it is at, read without Alembic; None when it cannot say.

    Any failure (a blank database, a locked or broken one) leaves the answer to Alembic's own path,
    which reports it as before.
    """
    try:
        with reading(engine) as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (DBAPIError, StoreError):  # the engine turns driver errors into StoreError
        return None


def _raw(conn: Connection, sql: str) -> None:
    conn.connection.driver_connection.execute(sql)  # type: ignore[union-attr]


def _check_foreign_keys(conn: Connection) -> None:
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        tables = sorted({row[0] for row in broken})
        raise StoreError(f"a migration left rows that refer to missing rows in {', '.join(tables)}")


def _new_revision(message: str, autogenerate: bool) -> None:
    """Write the next numbered revision, diffing tables.py against a scratch db at head."""
    from alembic import command
    from alembic.script import ScriptDirectory

    # The next number after the highest, not after the head's: the chain is not in number order (0006 → 0005).
    revisions = ScriptDirectory.from_config(make_config()).walk_revisions()
    number = f"{max(int(script.revision) for script in revisions) + 1:04d}"
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

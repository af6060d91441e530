"""Alembic environment: runs on the connection that `daemon.store.migrate` hands in.

No `fileConfig()` here: it would reset the daemon's logging.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection

from daemon.store.db import make_engine
from daemon.store.migrate import migration_connection
from daemon.store.tables import UtcDateTime, include_name, metadata

config = context.config


def _render_item(kind: str, obj: Any, autogen: AutogenContext) -> str | bool:
    """Write our column types as plain SQLAlchemy ones, so revisions never import the app."""
    if kind == "type" and isinstance(obj, UtcDateTime):
        return "sa.DateTime()"
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite alters tables by copying them; batch mode does that for us.
        render_as_batch=connection.dialect.name == "sqlite",
        # Our engine emits BEGIN itself, so SQLite DDL is transactional here.
        transactional_ddl=True,
        compare_type=True,
        render_item=_render_item,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    """Emit SQL to stdout instead of running it (`alembic upgrade --sql`)."""
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url,
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=bool(url and url.startswith("sqlite")),
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Migrate on the given connection, or on one opened from `sqlalchemy.url`."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with migration_connection(engine) as conn:
            _configure(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()

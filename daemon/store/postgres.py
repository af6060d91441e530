"""PostgreSQL through psycopg 3 (the `postgres` extra): the engine, its failures in words, raw connections."""

from __future__ import annotations

from typing import Any

from sqlalchemy import URL, Engine, create_engine
from sqlalchemy.engine import make_url

from daemon.errors import UsageError

DRIVER = "postgresql+psycopg"
CONNECT_TIMEOUT = 10
"""Seconds to wait for the server when connecting, unless the URL says `connect_timeout`."""

# Keepalives find a connection whose server vanished without a word (a dead machine, a cut
# network) in about a minute instead of the kernel's two hours.
_CONNECT_DEFAULTS: dict[str, Any] = {
    "connect_timeout": CONNECT_TIMEOUT, "application_name": "gristmill",
    "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3,
}  # fmt: skip

_LOST = "the connection to PostgreSQL was lost ({detail}); gristmill reconnects by itself once the server answers"
_UNREACHABLE = (
    "the PostgreSQL server at {where} cannot be reached ({detail}); check that it runs and that the URL names it"
)
_PROBLEMS = (
    ("password authentication failed", "PostgreSQL refused the password of user {user}; check the database URL"),
    ("role ", "PostgreSQL has no user {user} ({detail}); create it or fix the database URL"),
    ('database "', "{detail} on the server at {where}; create it (createdb {database}) or fix the database URL"),
    ("could not translate host name", "the database server's host name cannot be resolved ({detail}); check the URL"),
    ("no space left on device", "the disk of the PostgreSQL server is full; free some space there"),
    ("could not extend file", "the disk of the PostgreSQL server is full; free some space there"),
    ("does not exist", "the database has no gristmill tables yet; run: gristmill db upgrade"),
    ("connection refused", _UNREACHABLE),
    ("timeout expired", _UNREACHABLE),
    ("no route to host", _UNREACHABLE),
    ("connection failed", _UNREACHABLE),
    ("the database system is", _LOST),
    ("terminating connection", _LOST),
    ("server closed the connection", _LOST),
    ("connection is closed", _LOST),
    ("connection is lost", _LOST),
    ("consuming input failed", _LOST),
    ("sending query failed", _LOST),
    ("ssl connection has been closed", _LOST),
)


def postgres_url(url: str | URL) -> URL:
    """The URL with psycopg 3 as its driver; another driver is one sentence (exit 2)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        return parsed.set(drivername=DRIVER)
    if parsed.drivername != DRIVER:
        raise UsageError(
            f"gristmill talks to PostgreSQL through psycopg 3, not {parsed.drivername}; "
            f"write the URL as {DRIVER}://user@host/database"
        )
    return parsed


def pg_engine(url: str, **kwargs: Any) -> Engine:
    """An engine whose pool checks each connection before use, so a restarted server is reconnected to."""
    parsed = postgres_url(url)
    try:
        import psycopg  # noqa: F401  (only to say clearly when the extra is missing)
    except ImportError as exc:
        raise UsageError(
            "the database URL names PostgreSQL, but the postgres extra is not installed; "
            "run: pip install 'gristmill[postgres]'"
        ) from exc
    connect_args = {k: v for k, v in _CONNECT_DEFAULTS.items() if k not in parsed.query}
    connect_args.update(kwargs.pop("connect_args", {}))
    # Every thread that works holds at most one connection at a time; threads, not the pool, set the limit.
    options: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 10, "max_overflow": -1}
    return create_engine(parsed, connect_args=connect_args, **(options | kwargs))


def raw_connection(engine: Engine, *, autocommit: bool = True) -> Any:
    """A psycopg connection of its own (not from the pool), with the engine's URL and options."""
    import psycopg

    args, params = engine.dialect.create_connect_args(engine.url)
    params.pop("context", None)
    for key, value in _CONNECT_DEFAULTS.items():
        params.setdefault(key, value)
    return psycopg.connect(*args, autocommit=autocommit, **params)


def pg_problem(detail: str, url: URL | None) -> str | None:
    """One sentence for a PostgreSQL failure, or None when it is not one we know."""
    # "connection failed: connection to server at …, port … failed: FATAL:  database "x" does not exist"
    detail = detail.rsplit("FATAL:", 1)[-1].strip()
    lowered = detail.lower()
    where = f"{url.host or 'localhost'}:{url.port or 5432}" if url is not None else "the configured address"
    names = {
        "detail": detail.rstrip("."), "where": where,
        "user": url.username if url is not None and url.username else "(default)",
        "database": url.database if url is not None and url.database else "gristmill",
    }  # fmt: skip
    for needle, sentence in _PROBLEMS:
        if needle in lowered:
            return sentence.format(**names)
    return None

"""The engine: one per process, shared by threads; SQLite tuned for a daemon with many writers."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, closing, contextmanager, nullcontext, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

from daemon import defaults
from daemon.errors import DatabaseLost, StoreError
from daemon.store.failures import CORRUPT, driver_failure, translate_error
from daemon.store.postgres import pg_engine

log = logging.getLogger("gristmill")

BUSY_TIMEOUT_MS = int(defaults.DATABASE_TIMEOUT * 1000)
"""How long a writer waits for SQLite's lock before giving up (GRISTMILL_DATABASE_TIMEOUT)."""

# Execution option naming the BEGIN a SQLite transaction starts with.
BEGIN_OPTION = "gristmill_begin"

_PRAGMAS = (
    "PRAGMA foreign_keys=ON",
    "PRAGMA synchronous=NORMAL",
)


# SQLite has one writer at a time. Threads of a process take turns on a lock instead of in
# SQLite's busy handler, which sleeps in steps of milliseconds; and they write through one
# connection, whose page cache stays warm where each pooled connection would drop its own
# whenever another one wrote (257 page reads per run before, 1.5 after; see BENCHMARKS.md).
# Every engine make_engine creates is here; elsewhere (PostgreSQL) the database takes the turns.
_WRITERS: weakref.WeakKeyDictionary[Engine, _Writer] = weakref.WeakKeyDictionary()
# The SQLite file of each engine and its identity (device, inode) when opened.
_FILES: weakref.WeakKeyDictionary[Engine, tuple[Path, tuple[int, int]]] = weakref.WeakKeyDictionary()


class _Writer:
    """Where an engine's write transactions go: the turn they take, and the engine that runs them.

    A SQLite file's writer keeps its one connection checked out between writes (`held`): taking it
    from the pool and giving it back (with the pool's reset) cost more than the UPDATE it ran.
    """

    def __init__(self, turn: AbstractContextManager[Any], engine: Engine, *, keeps: bool = False) -> None:
        self.turn, self.engine, self.keeps = turn, engine, keeps
        self.held: Connection | None = None
        # The database file as SQLite names it (symbolic links resolved), asked at the first write; and
        # whether `sync` has made its log's name durable since (a log SQLite created is new in its folder).
        self.file: str | None = None
        self.named = False

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """BEGIN … COMMIT (ROLLBACK on an exception); the caller holds the turn. See `writing`."""
        if not self.keeps:
            with self.engine.begin() as conn:
                yield conn
            return
        conn, self.held = self.held or self.engine.connect(), None
        try:
            raw = driver(conn)
            if self.file is None:
                self.file = next(row[2] for row in raw.execute("PRAGMA database_list") if row[1] == "main")
            # BEGIN … COMMIT on the driver itself: SQLAlchemy's own transaction (its begin and
            # commit, their events and bookkeeping) cost a run's writes more than the statements
            # most of them run, which go to the driver too (direct.py; BENCHMARKS.md, issue 17,
            # ninth round). A Core statement run inside makes SQLAlchemy begin its view of this
            # transaction (the begin hook then leaves the driver's alone); it commits it then.
            _execute(conn, raw, "BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                with suppress(Exception):  # the connection is closed (so reset) next; the first error stands
                    conn.rollback() if conn.in_transaction() else raw.rollback()
                raise
            if conn.in_transaction():
                conn.commit()
            else:
                conn.dispatch.commit(conn)  # as SQLAlchemy dispatches it, for whoever counts commits
                _execute(conn, raw, "COMMIT")
        except BaseException:
            conn.close()  # back to the pool, which resets it; the next write checks it out afresh
            raise
        self.held = conn

    def sync(self, file: str) -> None:
        """Put every transaction committed so far to the database `file` on the disk, a power loss included.

        Commits run with `synchronous=NORMAL`: in WAL mode SQLite writes a commit's frames to the log
        and syncs it only before a checkpoint, which copies the frames into the database file and
        syncs that before any writer may start the log over. So a commit's frames are in the log
        file, or in the database file and synced there; one fdatasync of the log makes them durable
        either way, as `synchronous=FULL` would have inside the commit, while holding the write lock
        every other writer then waited on (BENCHMARKS.md, "Issue 17, sixteenth round"). No log file
        (a database not in WAL mode, whose commit synced it already): the database file.
        """
        for path in (f"{file}-wal", file):
            try:
                _sync_file(path)
            except FileNotFoundError:
                continue
            if not self.named:  # as SQLite syncs a new log's folder at the log's first sync
                _sync_file(os.path.dirname(path))
                self.named = True
            return

    def dispose(self) -> None:
        """Give the held connection back and close the writer's connections."""
        with self.turn:
            if self.held is not None:
                self.held.close()
                self.held = None
            self.file, self.named = None, False  # the last connection closed may have removed the log
        self.engine.dispose()


def _sync_file(path: str) -> None:
    """fdatasync the file or folder at `path`; StoreError when the disk fails (FileNotFoundError as it is)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise StoreError(f"cannot open {path} to make a write durable: {exc.strerror}") from exc
    try:
        os.fdatasync(fd)
    except OSError as exc:
        raise StoreError(f"the disk holding {path} failed to sync it: {exc.strerror}; check it") from exc
    finally:
        os.close(fd)


def _execute(conn: Connection, raw: sqlite3.Connection, sql: str) -> None:
    try:
        raw.execute(sql)
    except sqlite3.Error as exc:
        raise driver_failure(conn, exc, sql, ()) from exc


def make_engine(url: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS, **kwargs: Any) -> Engine:
    """Create the process's engine; SQLite gets WAL, a busy timeout, BEGIN IMMEDIATE and one writer."""
    backend = make_url(url).get_backend_name()
    if backend != "sqlite":
        made = pg_engine(url, **kwargs) if backend == "postgresql" else create_engine(url, **kwargs)
        engine = _translating(made)
        _WRITERS[engine] = _Writer(nullcontext(), engine)
        return engine
    path = _sqlite_file(url)
    if path is not None:
        _prepare_file(path)
    engine = _sqlite_engine(url, busy_timeout_ms, **kwargs)
    writer = _Writer(threading.Lock(), engine)
    if path is not None:
        one = _sqlite_engine(url, busy_timeout_ms, poolclass=StaticPool, connect_args={"check_same_thread": False})
        writer = _Writer(writer.turn, one, keeps=True)
        event.listen(engine, "engine_disposed", lambda _engine: writer.dispose())
        info = path.stat()
        _FILES[engine] = (path, (info.st_dev, info.st_ino))
    _WRITERS[engine] = writer
    return engine


@contextmanager
def writing(engine: Engine, *, one_statement: bool = False, durable: bool = False) -> Iterator[Connection]:
    """A write transaction (BEGIN IMMEDIATE on SQLite), one thread of this process at a time.

    DatabaseLost, before anything is written, when the SQLite file was deleted or replaced.
    `one_statement`: the caller executes a single statement, which PostgreSQL then runs as its own
    transaction (autocommit): one round trip to the server instead of three (BEGIN, it, COMMIT).
    `durable`: on SQLite, the commit is on the disk when it returns (its WAL synced after the commit,
    once the next writer may go: `_Writer.sync`). Every commit survives the death of the process;
    with `synchronous=NORMAL` the last ones may not survive a power loss, which is fine for what
    the next start finds again (a file still in its folder, a run done again from its last durable
    outputs) but not for a file's intent, which must outlive the move or write it announces.
    PostgreSQL's commits are durable already.
    """
    writer = _WRITERS[engine]
    if one_statement and not is_sqlite(writer.engine):
        with writer.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")
        return
    check_database_file(engine)  # before the turn: its stat lets other threads run, not wait for the turn
    with writer.turn:
        with writer.transaction() as conn:
            yield conn
        file = writer.file  # SQLite's file (None elsewhere), as of this commit
    if durable and file is not None:
        writer.sync(file)  # after the turn, the next writer's commit beside it; before the caller acts on this one


def driver(conn: Connection) -> sqlite3.Connection:
    """The `sqlite3` connection under `conn` (in `conn`'s transaction, if one is begun)."""
    # The pool's own reference: for sqlite3 the same object as `driver_connection`, without its three calls.
    return conn.connection.dbapi_connection  # type: ignore[return-value]


def shown_url(url: str) -> str:
    """The URL as it may be printed or logged: any password replaced by ***."""
    return make_url(url).render_as_string(hide_password=True)


def is_sqlite(engine: Engine | Connection) -> bool:
    """Whether the engine or connection talks to SQLite."""
    return engine.dialect.name == "sqlite"


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads only: on SQLite a deferred BEGIN, so it never waits for writers.

    On PostgreSQL each statement runs on its own (autocommit): one round trip instead of three. Under
    READ COMMITTED every statement sees a fresh snapshot anyway, so nothing is lost by it.
    """
    with engine.connect() as conn:
        if not is_sqlite(conn):
            yield conn.execution_options(isolation_level="AUTOCOMMIT")
            return
        conn.execution_options(**{BEGIN_OPTION: "BEGIN"})
        yield conn
        conn.rollback()


def check_database_file(engine: Engine) -> None:
    """DatabaseLost when the SQLite file this engine opened was deleted or replaced since.

    SQLite keeps writing into an open file that was unlinked, so nothing would say the records go
    nowhere; this look at the path (a stat, microseconds) comes before every write transaction.
    """
    opened = _FILES.get(engine)
    if opened is None:
        return
    path, identity = opened
    try:
        info = os.stat(path)
    except FileNotFoundError:
        info = None
    if info is None or (info.st_dev, info.st_ino) != identity:
        what = "deleted" if info is None else "replaced by another file"
        raise DatabaseLost(
            f"the database {path} was {what} while gristmill had it open; nothing more can be recorded in it; "
            "restore it from a backup, or restart gristmill to begin a new, empty one"
        )


def probe(engine: Engine) -> None:
    """StoreError, in one sentence, unless the database can be read and written; it changes nothing."""
    check_database_file(engine)
    with engine.connect() as conn:
        if is_sqlite(conn):
            found = [row[0] for row in conn.exec_driver_sql("PRAGMA quick_check").fetchall()]
            if found != ["ok"]:
                raise DatabaseLost(CORRUPT.format(db=conn.engine.url.database) + f" (SQLite says: {found[0]})")
        # A row written and rolled back: a database opened read-only (SQLite falls back to that
        # silently when its file cannot be written) refuses the INSERT itself.
        conn.execute(text("INSERT INTO meta (key, value) VALUES (:key, '')"), {"key": f"probe-{uuid.uuid4().hex}"})
        conn.rollback()


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for another database or an in-memory one."""
    return _sqlite_file(url) if make_url(url).get_backend_name() == "sqlite" else None


def _sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    if parsed.query.get("uri") or parsed.query.get("mode") == "memory":
        return None
    return Path(database).expanduser().absolute()


def _prepare_file(path: Path) -> None:
    """Create a missing database file, already in WAL mode, under its final name only once complete.

    A new file starts in rollback mode; while one process switches it to WAL, a second one that
    opens it meanwhile is told "database is locked" at once (SQLite will not wait when waiting
    could deadlock), however long its busy timeout. So nobody ever opens a file in that state.
    """
    if os.path.lexists(path):
        return
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the database folder {path.parent}: {exc.strerror}") from exc
    new = path.with_name(f".{path.name}.new-{os.getpid()}-{threading.get_ident()}")
    try:
        # Created here to fix its mode (0600); SQLite gives the -wal and -shm files the same one.
        os.close(os.open(new, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        with closing(sqlite3.connect(new, isolation_level=None)) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
        os.link(new, path)  # never replaces: a process that got there first keeps its file
    except FileExistsError:
        pass
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot create the database file {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    finally:
        new.unlink(missing_ok=True)


def _sqlite_engine(url: str, busy_timeout_ms: int, **kwargs: Any) -> Engine:
    engine = _translating(create_engine(url, **kwargs))
    _tune_sqlite(engine, busy_timeout_ms)
    return engine


def _translating(engine: Engine) -> Engine:
    event.listen(engine, "handle_error", translate_error)
    return engine


def _tune_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from pysqlite; our "begin" hook below emits it instead.
        dbapi_connection.isolation_level = None
        dbapi_connection.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        _switch_to_wal(dbapi_connection, busy_timeout_ms / 1000)
        for pragma in _PRAGMAS:
            dbapi_connection.execute(pragma)

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A deferred transaction that later writes gets SQLITE_BUSY at once in WAL mode,
        # ignoring busy_timeout; IMMEDIATE takes the write lock up front and waits for it.
        # Straight to the driver (7-8 µs a transaction less than exec_driver_sql; BENCHMARKS.md, fourth
        # round), its failure translated as the handle_error hook translates SQLAlchemy's.
        raw = driver(conn)
        if raw.in_transaction:  # the writer's, begun on the driver (`_Writer.transaction`): a Core statement in it
            return
        _execute(conn, raw, conn.get_execution_options().get(BEGIN_OPTION, "BEGIN IMMEDIATE"))


def _switch_to_wal(dbapi_connection: Any, patience: float) -> None:
    """WAL mode, waiting up to `patience` seconds for a database another process is switching now.

    A database in rollback mode (one made by another program) answers "locked" at once, not after
    the busy timeout, while a second connection converts it; so this waits for its turn itself.
    """
    deadline, pause, said = time.monotonic() + patience, 0.005, False
    while True:
        try:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        if not said:
            log.info("another process is setting up the database; waiting up to %.0fs for it", patience)
            said = True
        time.sleep(pause)
        pause = min(pause * 2, 0.1)

"""A file's intent is on the disk before the file is touched, a power loss included; so is a run
acknowledged to someone outside (a hook's 202).

SQLite runs in WAL with `synchronous=NORMAL`: a commit survives the death of the process, but the
last ones may not survive a power loss. That is fine for what the next start finds again, not for
an intent: a move that reached the disk while the name it took did not would leave the run unable
to tell where its file went. So the commits that carry an intent are followed by an fdatasync of
SQLite's write-ahead log (the file SQLite names it, links resolved), after the write turn and
before the caller goes on; and only those.
"""

from __future__ import annotations

import errno
import os
import threading
from collections.abc import Callable

import pytest
from sqlalchemy import text

from daemon.app import App
from daemon.domain import RunStatus
from daemon.errors import StoreError
from daemon.inbound.hook import BodyKind, HookBody
from daemon.settings import Settings
from daemon.store import make_engine
from daemon.store.db import writing
from daemon.store.migrate import upgrade
from tests.support import make_home, on_sync

MOVE_AND_WRITE = """name: filing
trigger: {watch: {path: ~/Inbox}}
steps:
  - id: kind
    classify: {labels: {invoice: A bill, letter: Correspondence}}
  - id: filed
    route:
      by: kind
      routes: {invoice: {move_to: ~/Out/invoices}}
      default: {move_to: ~/Out/other}
  - id: note
    write: {path: "~/Out/notes/{{ file.stem }}.txt", content: "{{ kind.label }}"}
"""


def _synchronous(conn) -> int:
    return conn.exec_driver_sql("PRAGMA synchronous").scalar()


@pytest.fixture
def engine(tmp_path):
    made = make_engine(f"sqlite:///{tmp_path / 'runs.db'}")
    upgrade(made)
    yield made
    made.dispose()


class _Syncs(list):
    """Every fdatasync of this process, as (path synced, what `also` said then), in order."""

    def __init__(self) -> None:
        super().__init__()
        self.also: Callable[[], object] = lambda: None


@pytest.fixture
def syncs(monkeypatch):
    seen = _Syncs()
    on_sync(monkeypatch, "fdatasync", lambda path: seen.append((path, seen.also())))
    return seen


def _touch(conn) -> None:
    conn.execute(text("INSERT INTO meta (key, value) VALUES ('k', 'v') ON CONFLICT (key) DO UPDATE SET value = 'w'"))


def test_a_durable_write_syncs_the_log_after_its_commit_and_a_plain_write_does_not(engine, tmp_path, syncs):
    with writing(engine, durable=True) as conn:
        _touch(conn)
        assert _synchronous(conn) == 1  # NORMAL: nothing is synced inside the commit, with the turn held
    log = str(tmp_path / "runs.db-wal")
    # The log, and its folder once (a log SQLite created is new there, as SQLite itself would sync it).
    assert [path for path, _ in syncs] == [log, str(tmp_path)]
    with writing(engine, durable=True) as conn:
        _touch(conn)
    with writing(engine) as conn:
        _touch(conn)
    assert [path for path, _ in syncs] == [log, str(tmp_path), log]


def test_a_durable_writes_sync_lets_the_next_writer_commit_meanwhile(engine, syncs):
    others: list[threading.Thread] = []

    def write_beside() -> bool | None:  # during the sync: would wait for the turn forever if the sync held it
        if not others:
            other = threading.Thread(target=lambda: _write(engine), daemon=True)
            others.append(other)
            other.start()
            other.join(timeout=30)
            return not other.is_alive()
        return None

    syncs.also = write_beside
    _write(engine, durable=True)
    assert syncs[0][1] is True, "the other writer committed while the durable write synced its log"


def _write(engine, *, durable: bool = False) -> None:
    with writing(engine, durable=durable) as conn:
        _touch(conn)


def test_a_database_reached_through_a_link_has_its_own_log_synced(tmp_path, syncs):
    real = tmp_path / "real" / "runs.db"
    made = make_engine(f"sqlite:///{real}")
    upgrade(made)
    made.dispose()
    (tmp_path / "runs.db").symlink_to(real)
    made = make_engine(f"sqlite:///{tmp_path / 'runs.db'}")
    try:
        _write(made, durable=True)
    finally:
        made.dispose()
    assert syncs[0][0] == f"{real}-wal"  # SQLite names the log after the file the link points to


def test_a_log_the_disk_cannot_sync_is_a_store_outage_in_one_sentence_and_the_next_write_goes_through(
    engine, monkeypatch
):
    def failing(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fdatasync", failing)
    with pytest.raises(StoreError, match=r"failed to sync it: Input/output error; check it") as raised:
        _write(engine, durable=True)
    assert not raised.value.fatal  # waited for, like a full disk
    monkeypatch.undo()
    _write(engine, durable=True)
    with writing(engine) as conn:
        assert conn.exec_driver_sql("SELECT value FROM meta WHERE key = 'k'").scalar() == "w"


def test_a_durable_write_that_fails_syncs_nothing_and_the_next_write_goes_through(engine, syncs):
    with pytest.raises(RuntimeError), writing(engine, durable=True) as conn:
        _touch(conn)
        raise RuntimeError("the caller failed mid-transaction")
    assert syncs == []
    _write(engine)
    with writing(engine) as conn:
        assert _synchronous(conn) == 1
        assert conn.exec_driver_sql("SELECT value FROM meta WHERE key = 'k'").scalar() == "v"


def _traced(app: App, seen: list[str], monkeypatch, also=lambda: None) -> dict[int, object]:
    """Record the writer's statements and every fdatasync ("SYNC path") in `seen`, in order; and what
    `also` said at each sync, by its place in `seen`."""
    with writing(app.engine) as conn:  # the writer's one connection, which every write goes through
        conn.connection.driver_connection.set_trace_callback(seen.append)
    said: dict[int, object] = {}

    def note(path: str) -> None:
        said[len(seen)] = also()
        seen.append(f"SYNC {path}")

    on_sync(monkeypatch, "fdatasync", note)
    return said


def _transactions_synced(seen: list[str], log: str) -> list[str]:
    """The text of each transaction whose commit the log's next sync follows (before any other statement)."""
    synced = []
    for i, entry in enumerate(seen):
        if entry == f"SYNC {log}":
            begin = max(j for j in range(i) if seen[j].startswith("BEGIN"))
            assert seen[i - 1] == "COMMIT", seen[begin : i + 1]  # right after its commit: nothing else between
            synced.append(" ".join(seen[begin:i]))
    return synced


def test_the_commits_that_carry_a_files_intent_are_the_durable_ones(tmp_path, standin, monkeypatch):
    home = make_home(tmp_path, standin.url)
    monkeypatch.setenv("HOME", str(home.root))  # the workflow's ~/Out, in-process
    home.write_workflow("filing.yaml", MOVE_AND_WRITE)
    app = App(Settings(data_dir=home.data, workflows=home.workflows, ollama_url=standin.url))
    out = home.root / "Out"
    seen: list[str] = []
    said = _traced(app, seen, monkeypatch, also=lambda: sorted(p.name for p in out.rglob("*") if p.is_file()))
    try:
        run = app.trigger("filing", home.drop("invoice.txt", "Invoice 7: please pay 12.00 EUR.\n"))
        log = f"{os.path.realpath(home.data / 'gristmill.db')}-wal"
    finally:
        app.close()

    assert run.status is RunStatus.SUCCEEDED
    # The move's intent and the write's, each synced after its commit, and nothing else.
    synced = _transactions_synced(seen, log)
    assert len(synced) == 2, [e for e in seen if e.startswith("SYNC")]
    assert all('"intent"' in sql and "UPDATE runs" in sql for sql in synced)
    unsynced = " ".join(e for i, e in enumerate(seen) if not any(e in t for t in synced))
    assert '"intent"' not in unsynced
    # Each is on the disk before its file is touched: nothing moved at the first, no note at the second.
    at = [said[i] for i, e in enumerate(seen) if e == f"SYNC {log}"]
    assert at == [[], ["invoice.txt"]]
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["invoice.txt", "invoice.txt"]


def test_a_hooks_run_is_durable_before_its_202(tmp_path, standin, monkeypatch):
    monkeypatch.setenv("FORM_TRIAGE_TOKEN", "durable-token")
    home = make_home(tmp_path, standin.url)
    home.use_example("form-triage.yaml")
    app = App(Settings(data_dir=home.data, workflows=home.workflows, ollama_url=standin.url))
    seen: list[str] = []
    _traced(app, seen, monkeypatch)
    try:
        body = HookBody(BodyKind.TEXT, b"Please help: the export is broken.", "text/plain")
        run = app.sources["http"].accept(app.workflows["form-triage"], body)
        log = f"{os.path.realpath(home.data / 'gristmill.db')}-wal"
        returned_at = len(seen)
    finally:
        app.close()

    assert run.status is RunStatus.QUEUED
    synced = _transactions_synced(seen[:returned_at], log)
    assert len(synced) == 1 and "INSERT INTO runs" in synced[0]

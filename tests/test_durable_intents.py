"""A file's intent is on the disk before the file is touched, a power loss included; so is a run
acknowledged to someone outside (a hook's 202).

SQLite runs in WAL with `synchronous=NORMAL`: a commit survives the death of the process, but the
last ones may not survive a power loss. That is fine for what the next start finds again, not for
an intent: a move that reached the disk while the name it took did not would leave the run unable
to tell where its file went. So the commits that carry an intent are made with
`synchronous=FULL` (the WAL fsynced at commit), and only those.
"""

from __future__ import annotations

import pytest

from daemon.app import App
from daemon.domain import RunStatus
from daemon.inbound.hook import BodyKind, HookBody
from daemon.settings import Settings
from daemon.store import make_engine
from daemon.store.db import writing
from daemon.store.migrate import upgrade
from tests.support import make_home

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


def test_a_durable_write_commits_with_full_sync_and_the_next_one_is_normal_again(engine):
    with writing(engine, durable=True) as conn:
        assert _synchronous(conn) == 2  # FULL: the WAL is fsynced at this commit
    with writing(engine) as conn:
        assert _synchronous(conn) == 1  # NORMAL for every other write


def test_a_durable_write_that_fails_leaves_the_next_write_normal(engine):
    with pytest.raises(RuntimeError), writing(engine, durable=True):
        raise RuntimeError("the caller failed mid-transaction")
    with writing(engine) as conn:
        assert _synchronous(conn) == 1


def test_the_commits_that_carry_a_files_intent_are_the_durable_ones(tmp_path, standin):
    home = make_home(tmp_path, standin.url)
    home.write_workflow("filing.yaml", MOVE_AND_WRITE)
    app = App(Settings(data_dir=home.data, workflows=home.workflows, ollama_url=standin.url))
    seen: list[str] = []
    try:
        with writing(app.engine) as conn:  # the writer's one connection, which every write goes through
            conn.connection.driver_connection.set_trace_callback(seen.append)
        run = app.trigger("filing", home.drop("invoice.txt", "Invoice 7: please pay 12.00 EUR.\n"))
    finally:
        app.close()

    assert run.status is RunStatus.SUCCEEDED
    # Each intent's UPDATE runs between a switch to FULL and the switch back, and nothing else does.
    full = [i for i, sql in enumerate(seen) if sql == "PRAGMA synchronous=FULL"]
    normal = [i for i, sql in enumerate(seen) if sql == "PRAGMA synchronous=NORMAL"]
    assert len(full) == len(normal) == 2  # the move's intent and the write's
    for start, end in zip(full, normal, strict=True):
        durable = " ".join(seen[start:end])
        assert '"intent"' in durable and "UPDATE runs" in durable and "COMMIT" in durable
    outside = [sql for i, sql in enumerate(seen) if not any(s < i < e for s, e in zip(full, normal, strict=True))]
    assert not any('"intent"' in sql for sql in outside)


def test_a_hooks_run_is_durable_before_its_202(tmp_path, standin, monkeypatch):
    monkeypatch.setenv("FORM_TRIAGE_TOKEN", "durable-token")
    home = make_home(tmp_path, standin.url)
    home.use_example("form-triage.yaml")
    app = App(Settings(data_dir=home.data, workflows=home.workflows, ollama_url=standin.url))
    seen: list[str] = []
    try:
        with writing(app.engine) as conn:
            conn.connection.driver_connection.set_trace_callback(seen.append)
        body = HookBody(BodyKind.TEXT, b"Please help: the export is broken.", "text/plain")
        run = app.sources["http"].accept(app.workflows["form-triage"], body)
    finally:
        app.close()

    assert run.status is RunStatus.QUEUED
    full, normal = seen.index("PRAGMA synchronous=FULL"), seen.index("PRAGMA synchronous=NORMAL")
    durable = " ".join(seen[full:normal])
    assert "INSERT INTO runs" in durable and "COMMIT" in durable

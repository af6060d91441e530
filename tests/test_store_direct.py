"""SQLite's hot statements on the driver's cursor (store/direct.py) against SQLAlchemy's Core path.

The same operations, with the same clock, on two databases: one store runs its hot statements on
the driver, the other (`direct=False`) through Core. Every stored value must be the same, byte for
byte and type for type, the Core reads must see the same runs, and a failure must read the same.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from daemon.domain import ModelCall, NewRun, Origin, RunStatus
from daemon.errors import StoreError
from daemon.store import RunStore, make_engine
from daemon.store.db import driver, reading, writing
from daemon.store.migrate import upgrade
from daemon.store.search import search
from tests.support import counting_commits

R, S, F = RunStatus.RUNNING, RunStatus.SUCCEEDED, RunStatus.FAILED
LOCKED = "the database stayed locked by another process for too long; try again"
NO_TABLES = "the database has no gristmill tables yet; run: gristmill db upgrade"


class Clock:
    """A clock that moves on by a little over a second at each reading: microseconds are stored too."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1, microseconds=1001)
        return self.now


def _store(path: Path, *, direct: bool, **engine_kw: Any) -> RunStore:
    engine = make_engine(f"sqlite:///{path}", **engine_kw)
    upgrade(engine)
    return RunStore(engine, clock=Clock(), direct=direct)


def _call(step: str, fmt: Any) -> ModelCall:
    return ModelCall(
        model="qwen3:4b", messages=[{"role": "user", "content": "classify: façade 🚀 \u2028 \"quoted\""}],
        options={"temperature": 0, "num_ctx": 4096}, format=fmt, step_id=step,
        started_at=datetime(2026, 3, 1, 11, 0, 0, 5, tzinfo=UTC), answer='{"label": "invoice"}', prompt_tokens=12,
        completion_tokens=3, total_duration_ns=2**40, wall_ms=1.25, server="local", done_reason="stop",
    )  # fmt: skip


def _exercise(store: RunStore) -> list[Any]:
    """A run's path and its side roads; what each operation returned."""
    seen: list[Any] = []
    odd = "/in/caf\udce9 été 🚀.pdf"  # not UTF-8, stored in its lossless form
    news = [
        NewRun("inbox", Origin.FILE, odd, "d1", "d1", context={"version": "1:2", "nested": {"list": (1, 2.5, None)}}),
        NewRun("inbox", Origin.FILE, "/in/b.txt", "d2", "d2", context={"version": "3:4"}, max_attempts=5),
        NewRun("inbox", Origin.FILE, "/in/copy of b.txt", "d2", "d2", context={"version": "5:6"}),  # same content
        NewRun("sort", Origin.MANUAL, None, None, None, context={}, dry_run=True),
        NewRun("sort", Origin.SCHEDULE, None, None, "tick-1"),
    ]
    seen.append(store.enqueue_many(news))
    seen.append(store.enqueue_many(news[:2]))  # found again: nothing new
    first = store.claim("w1", 30, workflows=["inbox"])
    seen.append(first)
    assert first is not None
    store.defer_call(first.id, _call("classify", {"type": "object"}), attempt=first.attempts)
    store.defer_call(first.id, _call("summary", None), attempt=first.attempts)
    outputs: dict[str, Any] = {"classify": {"label": "invoice", "confidence": 0.875}}
    seen.append(store.save_outputs(first.id, "w1", outputs, index=False))
    outputs["route"] = {"intent": "move_to", "destination": "/out/invoices/caf\udce9.pdf"}
    seen.append(store.save_outputs(first.id, "w1", outputs))
    seen.append(store.save_outputs(first.id, "someone else", outputs))  # the fence holds
    seen.append(store.renew(first.id, "w1", 60))
    seen.append(
        store.finish_and_claim(first.id, "w1", S, outputs=outputs, lease_seconds=30, workflows=["inbox", "sort"])
    )
    second = seen[-1][1]
    berlin = datetime(2026, 7, 1, 14, 0, 0, 999999, tzinfo=ZoneInfo("Europe/Berlin"))
    seen.append(store.release(second.id, "w1", not_before=berlin, error="the model was busy"))
    seen.append(store.claim("w2", 30, run_id=second.id))
    seen.append(store.release(second.id, "w2", not_before=None, refund_attempt=True))  # an SQL expression: Core
    seen.append(store.claim("w2", 30))
    third = seen[-1]
    store.defer_call(third.id, _call("classify", None), attempt=third.attempts)
    seen.append(store.save_outputs(third.id, "w2", {"classify": {"label": None, "tags": ["a", "b"]}}, index=False))
    seen.append(store.finish(third.id, "w2", F, error="the model's answer was not JSON"))  # indexes what was stored
    seen.append(
        store.finish_and_claim(second.id, "w2", S, outputs={}, lease_seconds=30, workflows=["x"])
    )  # not running
    seen.append(store.claim("w3", 30, workflows=["sort"]))
    return seen


def _rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored value of the run store's tables, with SQLite's type of each, read with the bare driver."""
    tables = {}
    with sqlite3.connect(path) as conn:
        for table in ("runs", "model_calls"):
            columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            shown = ", ".join(f"typeof({c}), {c}" for c in columns)
            tables[table] = conn.execute(f"SELECT {shown} FROM {table} ORDER BY id").fetchall()
        tables["runs_fts"] = conn.execute("SELECT rowid, * FROM runs_fts ORDER BY rowid").fetchall()
    return tables


def test_the_driver_path_stores_what_the_core_path_stores(tmp_path: Path):
    direct, core = _store(tmp_path / "direct.db", direct=True), _store(tmp_path / "core.db", direct=False)
    try:
        assert _exercise(direct) == _exercise(core)  # the same runs returned, read back from the rows
        stored = _rows(tmp_path / "direct.db")
        assert stored == _rows(tmp_path / "core.db")
        assert len(stored["runs"]) == 5 and len(stored["model_calls"]) == 3
        # The Core reads see the same runs and calls in both.
        for run_id in range(1, 6):
            assert direct.get(run_id) == core.get(run_id)
            assert direct.calls(run_id) == core.calls(run_id)
        assert direct.get(1).input_path == "/in/caf\udce9 été 🚀.pdf"
        assert (direct.get(1).status, direct.get(2).status, direct.get(2).not_before) == (S, F, None)
        assert [call.format for call in direct.calls(1)] == [{"type": "object"}, None]
        found = search(direct.engine, "invoices")
        assert [hit.run_id for hit in found] == [1]
        assert found == search(core.engine, "invoices")
    finally:
        direct.engine.dispose()
        core.engine.dispose()


def test_a_runs_statements_are_compiled_once_not_at_every_execution(tmp_path: Path):
    """SQLite compiles a statement again when a value bound in its WHERE could match a partial index's."""
    store = _store(tmp_path / "runs.db", direct=True)
    try:
        for n in range(3):  # each statement shape runs at least twice
            news = [NewRun("inbox", Origin.FILE, f"/in/{n}-{i}.txt", f"{n}-{i}", f"{n}-{i}") for i in range(2)]
            store.enqueue_many(news)
            run = store.claim("w1", 30, workflows=["inbox"])
            while run is not None:
                store.defer_call(run.id, _call("classify", {"type": "object"}), attempt=run.attempts)
                store.save_outputs(run.id, "w1", {"kind": {"intent": "move_to"}}, index=False, durable=True)
                run = store.finish_and_claim(run.id, "w1", S, outputs={"kind": {}}, lease_seconds=30)[1]
        # SQLite's own account of the statements the writer's connection holds (its sqlite_stmt table).
        with writing(store.engine) as conn:
            held = driver(conn).execute("SELECT sql, run, reprep FROM sqlite_stmt").fetchall()
        ours = {sql.split(" WHERE")[0]: (ran, again) for sql, ran, again in held if "runs" in sql.split("(")[0]}
        assert sum(ran for ran, _ in ours.values()) >= 20  # the enqueue, claims, intents and finishes
        assert {sql: again for sql, (_, again) in ours.items() if again} == {}
    finally:
        store.engine.dispose()


@pytest.mark.parametrize("direct", [True, False])
def test_a_locked_database_is_the_one_sentence(tmp_path: Path, direct: bool):
    path = tmp_path / "runs.db"
    store = _store(path, direct=direct, busy_timeout_ms=50)
    try:
        store.enqueue(NewRun("inbox", Origin.FILE, "/in/a.txt", "d1", "d1"))
        run = store.claim("w", 30)
        assert run is not None
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process's writer, holding the lock
        for write in (
            lambda: store.save_outputs(run.id, "w", {"a": 1}, index=False),
            lambda: store.claim("w", 30),
            lambda: store.enqueue(NewRun("inbox", Origin.FILE, "/in/b.txt", "d2", "d2")),
        ):
            with pytest.raises(StoreError) as caught:
                write()
            assert str(caught.value) == LOCKED
        other.execute("COMMIT")
        other.close()
        # The writer's connection was given back and taken again: the next writes go through.
        assert store.save_outputs(run.id, "w", {"a": 1}, index=False)
        assert store.finish_and_claim(run.id, "w", S, outputs={"a": 1}, lease_seconds=30) == (True, None)
        assert store.get(run.id).outputs == {"a": 1}
    finally:
        store.engine.dispose()


@pytest.mark.parametrize("direct", [True, False])
def test_a_database_without_tables_is_the_one_sentence(tmp_path: Path, direct: bool):
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    store = RunStore(engine, clock=Clock(), direct=direct)
    try:
        for write in (
            lambda: store.enqueue(NewRun("inbox", Origin.FILE, "/in/a.txt", "d1", "d1")),
            lambda: store.claim("w", 30, workflows=["inbox"]),
        ):
            with pytest.raises(StoreError) as caught:
                write()
            assert str(caught.value) == NO_TABLES
    finally:
        engine.dispose()


@pytest.mark.parametrize("core", [False, True], ids=["driver-only", "with-a-core-statement"])
def test_a_write_transaction_on_the_driver_commits_whole_or_not_at_all(tmp_path: Path, core: bool):
    # The SQLite writer begins and commits on the driver (store/db.py); a Core statement inside joins it.
    engine = make_engine(f"sqlite:///{tmp_path / 'runs.db'}")
    try:
        with writing(engine) as conn:
            driver(conn).execute("CREATE TABLE t (x INTEGER)")

        def write(value: int, *, fail: bool) -> None:
            with writing(engine) as conn:
                driver(conn).execute("INSERT INTO t VALUES (?)", (value,))
                if core:
                    conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": -value})
                if fail:
                    raise RuntimeError("midway")

        with counting_commits(engine) as commits:
            with pytest.raises(RuntimeError, match="midway"):
                write(1, fail=True)
            write(2, fail=False)  # the connection was given back and taken again: it goes through
            write(3, fail=False)
        with reading(engine) as conn:
            stored = sorted(x for (x,) in conn.execute(text("SELECT x FROM t")))
    finally:
        engine.dispose()

    assert stored == ([-3, -2, 2, 3] if core else [2, 3])
    assert len(commits) == 2  # what counts commits sees each one, on the driver or not

"""The Alembic chain on real SQLite files and a real PostgreSQL: exact schema up, nothing left down, any cwd.

Tests taking `engine` run against both (the `store_url` fixture); `sqlite_engine` ones are SQLite's own.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

import daemon
from daemon.errors import StoreError
from daemon.store import migrate
from daemon.store.db import make_engine
from daemon.store.tables import include_name, metadata, runs

REPO = Path(daemon.__file__).resolve().parent.parent
HEAD = "0008"  # the newest revision

RUNS_COLUMNS = [
    ("id", "INTEGER", False),
    ("workflow", "TEXT", False),
    ("status", "TEXT", False),
    ("trigger", "TEXT", False),
    ("input_path", "TEXT", True),
    ("sha256", "TEXT", True),
    ("dedupe_key", "TEXT", True),
    ("context", "JSON", False),
    ("outputs", "JSON", False),
    ("attempts", "INTEGER", False),
    ("max_attempts", "INTEGER", False),
    ("error", "TEXT", True),
    ("created_at", "DATETIME", False),
    ("started_at", "DATETIME", True),
    ("finished_at", "DATETIME", True),
    ("not_before", "DATETIME", True),
    ("lease_owner", "TEXT", True),
    ("lease_expires_at", "DATETIME", True),
    ("search_name", "TEXT", True),
    ("search_text", "TEXT", True),
    ("dry_run", "BOOLEAN", False),
]
CALLS_COLUMNS = [
    ("id", "INTEGER", False),
    ("run_id", "INTEGER", False),
    ("step_id", "TEXT", True),
    ("attempt", "INTEGER", False),
    ("model", "TEXT", False),
    ("messages", "JSON", False),
    ("options", "JSON", False),
    ("format", "JSON", True),
    ("answer", "TEXT", True),
    ("thinking", "TEXT", True),
    ("error", "TEXT", True),
    ("prompt_tokens", "INTEGER", True),
    ("completion_tokens", "INTEGER", True),
    ("total_duration_ns", "BIGINT", True),
    ("load_duration_ns", "BIGINT", True),
    ("prompt_eval_duration_ns", "BIGINT", True),
    ("eval_duration_ns", "BIGINT", True),
    ("wall_ms", "FLOAT", True),
    ("started_at", "DATETIME", False),
    ("server", "TEXT", True),
    ("done_reason", "TEXT", True),
]
META_COLUMNS = [("key", "TEXT", False), ("value", "TEXT", False)]
CORRECTIONS_COLUMNS = [
    ("id", "INTEGER", False),
    ("run_id", "INTEGER", False),
    ("step_id", "TEXT", False),
    ("kind", "TEXT", False),
    ("change", "JSON", False),
    ("output", "JSON", False),
    ("original", "JSON", True),
    ("author", "TEXT", False),
    ("created_at", "DATETIME", False),
    ("refile", "JSON", True),
]
EVALS_COLUMNS = [
    ("id", "INTEGER", False),
    ("workflow", "TEXT", False),
    ("model", "TEXT", False),
    ("source", "TEXT", False),
    ("created_at", "DATETIME", False),
    ("since", "DATETIME", True),
    ("run_limit", "INTEGER", True),
    ("runs", "INTEGER", False),
    ("agreement", "FLOAT", True),
    ("figures", "JSON", False),
]
SHADOW_COLUMNS = [
    ("id", "INTEGER", False),
    ("run_id", "INTEGER", False),
    ("step_id", "TEXT", False),
    ("model", "TEXT", False),
    ("server", "TEXT", True),
    ("output", "JSON", True),
    ("invalid", "TEXT", True),
    ("answer", "TEXT", True),
    ("calls", "INTEGER", False),
    ("prompt_tokens", "INTEGER", True),
    ("completion_tokens", "INTEGER", True),
    ("total_duration_ns", "BIGINT", True),
    ("eval_duration_ns", "BIGINT", True),
    ("wall_ms", "FLOAT", True),
    ("started_at", "DATETIME", False),
]
# FTS5's virtual table, its shadow tables (migration 0003) and its pending runs (0008), outside tables.py's metadata.
FTS_TABLES = {"runs_fts", "runs_fts_data", "runs_fts_idx", "runs_fts_docsize", "runs_fts_config", "runs_fts_pending"}
NODES_COLUMNS = [
    ("id", "TEXT", False),
    ("host", "TEXT", False),
    ("pid", "INTEGER", False),
    ("role", "TEXT", False),
    ("version", "TEXT", False),
    ("started_at", "DATETIME", False),
    ("heartbeat_at", "DATETIME", False),
    ("stopped_at", "DATETIME", True),
]
# PostgreSQL's names for the same types: timestamps without time zone (naive UTC), 8-byte floats.
PG_TYPES = {"TIMESTAMP": "DATETIME", "DOUBLE PRECISION": "FLOAT"}

EXPECTED = {
    "runs": {
        "columns": RUNS_COLUMNS,
        "pk": ["id"],
        "indexes": {
            "ix_runs_status_not_before_id": (["status", "not_before", "id"], False),
            "ix_runs_workflow_created_at": (["workflow", "created_at"], False),
            "ix_runs_sha256": (["sha256"], False),
            "ix_runs_workflow_id": (["workflow", "id"], False),
            "ix_runs_created_at": (["created_at"], False),
            "ix_runs_queued_id": (["id"], False),
            "ix_runs_finished_at_status": (["finished_at", "status"], False),
        },
        "uniques": {"uq_runs_workflow_dedupe_key": ["workflow", "dedupe_key"]},
        "fks": [],
        "checks": {"ck_runs_status"},
    },
    "model_calls": {
        "columns": CALLS_COLUMNS,
        "pk": ["id"],
        "indexes": {"ix_model_calls_run_id": (["run_id"], False)},
        "uniques": {},
        "fks": [("fk_model_calls_run_id_runs", ["run_id"], "runs", ["id"], "CASCADE")],
        "checks": set(),
    },
    "corrections": {
        "columns": CORRECTIONS_COLUMNS,
        "pk": ["id"],
        "indexes": {"ix_corrections_run_id": (["run_id"], False)},
        "uniques": {},
        "fks": [("fk_corrections_run_id_runs", ["run_id"], "runs", ["id"], "CASCADE")],
        "checks": {"ck_corrections_kind"},
    },
    "evals": {
        "columns": EVALS_COLUMNS,
        "pk": ["id"],
        "indexes": {"ix_evals_workflow_id": (["workflow", "id"], False)},
        "uniques": {},
        "fks": [],
        "checks": {"ck_evals_source"},
    },
    "shadow_calls": {
        "columns": SHADOW_COLUMNS,
        "pk": ["id"],
        "indexes": {"ix_shadow_calls_run_id": (["run_id"], False)},
        "uniques": {"uq_shadow_calls_run_id_step_id_model": ["run_id", "step_id", "model"]},
        "fks": [("fk_shadow_calls_run_id_runs", ["run_id"], "runs", ["id"], "CASCADE")],
        "checks": set(),
    },
    "meta": {
        "columns": META_COLUMNS,
        "pk": ["key"],
        "indexes": {},
        "uniques": {},
        "fks": [],
        "checks": set(),
    },
    "nodes": {
        "columns": NODES_COLUMNS,
        "pk": ["id"],
        "indexes": {},
        "uniques": {},
        "fks": [],
        "checks": {"ck_nodes_role"},
    },
}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "gristmill.db"


@pytest.fixture
def engine(store_url: str):
    engine = make_engine(store_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(db_path: Path):
    engine = make_engine(f"sqlite:///{db_path}")
    yield engine
    engine.dispose()


def describe(engine: sa.Engine, table: str) -> dict:
    """The schema of one table as plain data, in the shape of EXPECTED."""
    insp = sa.inspect(engine)
    return {
        "columns": [
            (c["name"], PG_TYPES.get(str(c["type"]), str(c["type"])), c["nullable"]) for c in insp.get_columns(table)
        ],  # fmt: skip
        "pk": insp.get_pk_constraint(table)["constrained_columns"],
        # PostgreSQL lists the index behind each unique constraint as well; the constraint is what we check.
        "indexes": {
            i["name"]: (i["column_names"], bool(i["unique"]))
            for i in insp.get_indexes(table)
            if not i.get("duplicates_constraint")
        },
        "uniques": {u["name"]: u["column_names"] for u in insp.get_unique_constraints(table)},
        "fks": [
            (
                f["name"],
                f["constrained_columns"],
                f["referred_table"],
                f["referred_columns"],
                f["options"].get("ondelete"),
            )
            for f in insp.get_foreign_keys(table)
        ],  # fmt: skip
        "checks": {c["name"] for c in insp.get_check_constraints(table)},
    }


def test_upgrade_creates_the_exact_schema(engine):
    migrate.upgrade(engine)
    expected = {table: dict(shape) for table, shape in EXPECTED.items()}
    if engine.dialect.name == "sqlite":
        assert set(sa.inspect(engine).get_table_names()) == {"alembic_version", *EXPECTED, *FTS_TABLES}
        with engine.connect() as conn:
            triggers = conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'").scalars().all()
        assert sorted(triggers) == ["runs_fts_delete", "runs_fts_insert", "runs_fts_update"]
    else:
        # PostgreSQL searches through a GIN index over an expression, not a table of its own.
        assert set(sa.inspect(engine).get_table_names()) == {"alembic_version", *EXPECTED}
        expected["runs"]["indexes"] = {**EXPECTED["runs"]["indexes"], "ix_runs_search": ([None], False)}
    for table, shape in expected.items():
        assert describe(engine, table) == shape, table


def test_status_check_and_defaults(engine):
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO runs (workflow, status, trigger, created_at)"
            " VALUES ('w', 'queued', 'manual', '2026-01-01 00:00:00')"
        )
        row = conn.execute(sa.select(runs.c.context, runs.c.outputs, runs.c.attempts, runs.c.max_attempts)).one()
    assert tuple(row) == ({}, {}, 0, 3)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO runs (workflow, status, trigger, created_at)"
            " VALUES ('w', 'lost', 'manual', '2026-01-01 00:00:00')"
        )


def test_tables_py_matches_the_migrations(engine):
    migrate.upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        assert compare_metadata(context, metadata) == []


def test_current_head_and_idempotent_upgrade(engine):
    assert migrate.current(engine) is None
    assert migrate.head() == HEAD
    migrate.upgrade(engine)
    assert migrate.current(engine) == migrate.head()
    before = {t: describe(engine, t) for t in EXPECTED}
    migrate.upgrade(engine)
    assert migrate.current(engine) == migrate.head()
    assert {t: describe(engine, t) for t in EXPECTED} == before


def test_a_database_at_head_is_checked_without_alembic(store_url: str, engine):
    """Start-up's upgrade compares with `migrate.HEAD` first; Alembic is loaded only to migrate."""
    assert migrate.HEAD == migrate.head()  # a new revision must change HEAD too
    migrate.upgrade(engine)
    code = (
        "import sys; from daemon.store.db import make_engine; from daemon.store.migrate import upgrade;"
        " upgrade(make_engine(sys.argv[1])); print(any(m.split('.')[0] == 'alembic' for m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, store_url],
        env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    # One revision behind: the same call migrates, through Alembic.
    migrate.downgrade(engine, "0006")
    migrate.upgrade(engine)
    assert migrate.current(engine) == HEAD


def test_downgrade_to_base_leaves_nothing(engine):
    migrate.upgrade(engine)
    migrate.downgrade(engine)
    assert sa.inspect(engine).get_table_names() == ["alembic_version"]
    assert migrate.current(engine) is None
    migrate.upgrade(engine)
    assert migrate.current(engine) == migrate.head()


def test_script_location_is_the_repo_migrations_folder():
    location = migrate.script_location()
    assert location == REPO / "migrations"
    assert (location / "env.py").is_file()


def test_upgrade_does_not_depend_on_cwd(tmp_path: Path, db_path: Path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "import sys; from daemon.store.db import make_engine;"
        " from daemon.store.migrate import upgrade, current;"
        " e = make_engine(sys.argv[1]); upgrade(e); print(current(e))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", code, f"sqlite:///{db_path}"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == migrate.head()
    assert list(elsewhere.iterdir()) == []


def test_installed_wheel_layout_migrates(tmp_path: Path, db_path: Path):
    """The wheel ships migrations/ as daemon/_migrations; that copy must be the one used."""
    site = tmp_path / "site"
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "daemon", site / "daemon", ignore=skip)
    shutil.copytree(REPO / "migrations", site / "daemon" / "_migrations", ignore=skip)
    code = (
        "import sys; from daemon.store.db import make_engine;"
        " from daemon.store.migrate import upgrade, current, script_location;"
        " e = make_engine(sys.argv[1]); upgrade(e); print(script_location(), current(e))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, f"sqlite:///{db_path}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(site)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(site / "daemon" / "_migrations"), migrate.head()]


def test_two_processes_upgrading_at_once(store_url: str):
    code = (
        "import sys; from daemon.store.db import make_engine; from daemon.store.migrate import upgrade;"
        " upgrade(make_engine(sys.argv[1]))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    argv = [sys.executable, "-c", code, store_url]
    procs = [subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    engine = make_engine(store_url)
    assert migrate.current(engine) == migrate.head()
    engine.dispose()


def test_sqlite_settings_and_file_modes(sqlite_engine, db_path: Path):
    migrate.upgrade(sqlite_engine)
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(db_path.parent.stat().st_mode) & 0o077 == 0
    wal = db_path.with_name(db_path.name + "-wal")
    assert stat.S_IMODE(wal.stat().st_mode) == 0o600


def test_foreign_keys_are_back_on_after_migrating(sqlite_engine):
    migrate.upgrade(sqlite_engine)
    migrate.upgrade(sqlite_engine)
    for _ in range(3):  # whichever pooled connection we get
        with sqlite_engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_table_rebuild_in_a_migration_keeps_child_rows(sqlite_engine):
    """Batch mode drops and recreates `runs`; with foreign keys on that would cascade."""
    migrate.upgrade(sqlite_engine)
    with sqlite_engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO runs (id, workflow, status, trigger, created_at)"
            " VALUES (1, 'w', 'queued', 'manual', '2026-01-01 00:00:00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO model_calls (run_id, attempt, model, messages, options, started_at)"
            " VALUES (1, 1, 'm', '[]', '{}', '2026-01-01 00:00:00')"
        )
    with migrate.migration_connection(sqlite_engine) as conn:
        ops = Operations(MigrationContext.configure(conn, opts={"render_as_batch": True}))
        with ops.batch_alter_table("runs", recreate="always") as batch:
            batch.add_column(sa.Column("note", sa.Text()))
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM model_calls").scalar() == 1


def test_a_locked_database_is_a_store_error(tmp_path: Path):
    path = tmp_path / "locked.db"
    engine = make_engine(f"sqlite:///{path}", busy_timeout_ms=50)
    migrate.upgrade(engine)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked"), engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM meta")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        engine.dispose()


def test_a_blank_database_is_a_store_error(engine):
    with pytest.raises(StoreError, match="db upgrade"), engine.connect() as conn:
        conn.exec_driver_sql("SELECT * FROM runs")


def test_downgrading_the_nodes_revision_keeps_the_runs(engine):
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(runs.insert().values(workflow="w", status="queued", trigger="manual", created_at=_noon()))
    migrate.downgrade(engine, "0001")
    assert "nodes" not in sa.inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar() == 1
    migrate.upgrade(engine)
    assert describe(engine, "nodes") == EXPECTED["nodes"]


def test_postgres_types_sequences_and_naive_utc(pg_url: str):
    """What the exact-schema test cannot see: defaults, sequences, time zones, JSON round trips."""
    engine = make_engine(pg_url)
    try:
        migrate.upgrade(engine)
        columns = {c["name"]: c for c in sa.inspect(engine).get_columns("runs")}
        assert columns["id"]["autoincrement"] and "nextval" in columns["id"]["default"]
        assert columns["created_at"]["type"].timezone is False
        assert isinstance(columns["context"]["type"], sa.JSON)
        (queued,) = [i for i in sa.inspect(engine).get_indexes("runs") if i["name"] == "ix_runs_queued_id"]
        assert "'queued'" in queued["dialect_options"]["postgresql_where"]  # only queued runs: claims stay cheap
        with engine.begin() as conn:
            ids = [
                conn.execute(
                    runs.insert()
                    .values(
                        workflow="w", status="queued", trigger="manual", created_at=_noon(), context={"é": [1, None]}
                    )
                    .returning(runs.c.id)  # fmt: skip
                ).scalar_one()
                for _ in range(2)
            ]
            stored = conn.exec_driver_sql("SELECT created_at::text, context::text FROM runs ORDER BY id").first()
            with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
                conn.execute(runs.insert().values(workflow="w", status="queued", trigger="manual",
                                                  created_at=_noon(), dedupe_key="k"))  # fmt: skip
                conn.execute(runs.insert().values(workflow="w", status="queued", trigger="manual",
                                                  created_at=_noon(), dedupe_key="k"))  # fmt: skip
        assert ids[1] == ids[0] + 1
        assert stored[0] == "2026-03-01 11:00:00"  # 12:00 in Berlin, stored as naive UTC
        assert json.loads(stored[1]) == {"é": [1, None]}
    finally:
        engine.dispose()


def _noon():
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime(2026, 3, 1, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))

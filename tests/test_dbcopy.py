"""`gristmill db copy`: a SQLite history into PostgreSQL, twice; the same history comes out of both."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from daemon.commands.dbcopy import copy_all, open_pair, plan
from daemon.store.tables import metadata, runs
from tests.support import INVOICE, LETTER, RECEIPT, make_home


@pytest.fixture
def home(tmp_path, standin):
    home = make_home(tmp_path, standin.url)
    home.use_example("sort-inbox.yaml")
    return home


def history(home, url: str | None = None) -> tuple[list[dict], list[dict]]:
    """`runs --json` and `show --json` of every run, read through the CLI from `url` (default: the home's)."""
    if url is not None:
        home.extra_env["GRISTMILL_DATABASE_URL"] = url
    try:
        listed = json.loads(home.cli("runs", "--json", "--limit", "1000", check=True).stdout)
        shown = [json.loads(home.cli("show", str(run["id"]), "--json", check=True).stdout) for run in listed]
    finally:
        home.extra_env.pop("GRISTMILL_DATABASE_URL", None)
    return listed, shown


def test_copy_twice_then_the_postgres_history_equals_the_sqlite_one(home, pg_url):
    home.drop("invoice.txt", INVOICE)
    home.drop("receipt.md", RECEIPT)
    home.drop("letter.txt", LETTER)
    home.drop("copy of letter.txt", LETTER)  # a duplicate: a skipped run
    assert home.cli("run", "--once").returncode == 0

    first = home.cli("db", "copy", "--to", pg_url, check=True)
    assert "runs: 4 rows, 4 copied, 0 already there" in first.stdout
    assert "model_calls" in first.stdout and "nodes: 1 rows, 1 copied" in first.stdout
    again = home.cli("db", "copy", "--to", pg_url, check=True)
    assert "runs: 4 rows, 0 copied, 4 already there" in again.stdout
    assert " 0 copied" in again.stdout and not [line for line in again.stdout.splitlines() if " 0 copied" not in line]

    sqlite_runs, sqlite_shown = history(home)
    pg_runs, pg_shown = history(home, pg_url)
    assert len(sqlite_runs) == 4 and sum(len(run["calls"]) for run in sqlite_shown) >= 6
    assert pg_runs == sqlite_runs
    assert pg_shown == sqlite_shown

    # The next run recorded in PostgreSQL gets a new id: the sequences moved past the copied ones.
    home.extra_env["GRISTMILL_DATABASE_URL"] = pg_url
    home.drop("receipt 2.md", RECEIPT.replace("2 loaves", "3 loaves"))
    assert home.cli("run", "--once").returncode == 0
    newest = json.loads(home.cli("runs", "--json", "--limit", "1", check=True).stdout)[0]
    assert newest["id"] == max(run["id"] for run in sqlite_runs) + 1 and newest["status"] == "succeeded"


def test_every_table_of_the_schema_is_copied_and_sql_nulls_stay_null(tmp_path, pg_url):
    source, target = open_pair(f"sqlite:///{tmp_path / 'src.db'}", pg_url)
    try:
        with source.begin() as conn:
            conn.execute(runs.insert().values(id=7, workflow="w", status="queued", trigger="manual",
                                              created_at=_aware()))  # fmt: skip
        tables = plan(source)
        assert [t.table for t in tables] == [t.name for t in metadata.sorted_tables]
        copy_all(source, target, tables, lambda name, rows: None)
        assert {t.table: (t.rows, t.copied) for t in tables}["runs"] == (1, 1)
        with target.connect() as conn:
            assert conn.execute(select(runs.c.id, runs.c.context)).all() == [(7, {})]
    finally:
        source.dispose()
        target.dispose()


def test_copy_into_the_same_database_is_refused(home):
    result = home.cli("db", "copy", "--to", f"sqlite:///{home.data / 'gristmill.db'}")
    assert result.returncode == 2
    assert (
        result.stderr.strip() == "gristmill: the target is the configured database itself; name another one with --to"
    )


def _aware():
    from datetime import UTC, datetime

    return datetime(2026, 3, 1, tzinfo=UTC)

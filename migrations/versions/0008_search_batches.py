"""SQLite's search index brought up to date in batches, not at every write of a run.

FTS5 writes a new segment of its index at every commit that touches it (5–6 pages, about 120 µs
here), whatever the number of rows: at a run's enqueue and again at its end, that was half the
pages of a run's last transaction. Now the triggers only note the run in `runs_fts_pending`
(one row of a small table), and `daemon/store/searchindex.py` indexes the noted runs together:
the daemon every few dozen ended runs, and a search before it reads, so search never misses one.

The invariant the triggers keep: a run absent from `runs_fts_pending` is in the index with the
values its row holds now. So the old values are taken out of the index ('delete', which must be
given exactly what was indexed) only for such a run, which then becomes pending; a pending run is
not in the index and needs nothing until it is caught up. PostgreSQL's GIN index is unchanged.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = "search_name, search_text, error"
_INDEXED = "NOT EXISTS (SELECT 1 FROM runs_fts_pending WHERE run_id = old.id)"
_TRIGGERS = ("runs_fts_update", "runs_fts_delete", "runs_fts_insert")

_BATCHED = (
    "CREATE TABLE runs_fts_pending (run_id INTEGER PRIMARY KEY)",
    """CREATE TRIGGER runs_fts_insert AFTER INSERT ON runs BEGIN
        INSERT INTO runs_fts_pending(run_id) VALUES (new.id);
    END""",
    f"""CREATE TRIGGER runs_fts_delete AFTER DELETE ON runs BEGIN
        INSERT INTO runs_fts(runs_fts, rowid, {_COLUMNS})
        SELECT 'delete', old.id, old.search_name, old.search_text, old.error WHERE {_INDEXED};
        DELETE FROM runs_fts_pending WHERE run_id = old.id;
    END""",
    f"""CREATE TRIGGER runs_fts_update AFTER UPDATE OF {_COLUMNS} ON runs WHEN {_INDEXED} BEGIN
        INSERT INTO runs_fts(runs_fts, rowid, {_COLUMNS})
        VALUES ('delete', old.id, old.search_name, old.search_text, old.error);
        INSERT INTO runs_fts_pending(run_id) VALUES (new.id);
    END""",
)

# Migration 0003's triggers: the index updated in the same statement as the row.
_AT_ONCE = (
    f"""CREATE TRIGGER runs_fts_insert AFTER INSERT ON runs BEGIN
        INSERT INTO runs_fts(rowid, {_COLUMNS}) VALUES (new.id, new.search_name, new.search_text, new.error);
    END""",
    f"""CREATE TRIGGER runs_fts_delete AFTER DELETE ON runs BEGIN
        INSERT INTO runs_fts(runs_fts, rowid, {_COLUMNS})
        VALUES ('delete', old.id, old.search_name, old.search_text, old.error);
    END""",
    f"""CREATE TRIGGER runs_fts_update AFTER UPDATE OF {_COLUMNS} ON runs BEGIN
        INSERT INTO runs_fts(runs_fts, rowid, {_COLUMNS})
        VALUES ('delete', old.id, old.search_name, old.search_text, old.error);
        INSERT INTO runs_fts(rowid, {_COLUMNS}) VALUES (new.id, new.search_name, new.search_text, new.error);
    END""",
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _drop_triggers()
    for statement in _BATCHED:  # the index is whole now: nothing is pending
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _drop_triggers()
    op.execute(
        f"INSERT INTO runs_fts(rowid, {_COLUMNS}) SELECT r.id, r.search_name, r.search_text, r.error "
        "FROM runs_fts_pending p JOIN runs r ON r.id = p.run_id"
    )
    op.execute("DROP TABLE runs_fts_pending")
    for statement in _AT_ONCE:
        op.execute(statement)


def _drop_triggers() -> None:
    for trigger in _TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")

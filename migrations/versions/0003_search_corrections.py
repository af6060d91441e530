"""Full-text search over runs, and corrections of step outputs.

runs gets `search_name` and `search_text`, and two indexes for the dashboard's pages (written by the store with the values they index); on
SQLite an external-content FTS5 table `runs_fts` over them and `error`, kept in step by triggers in
the same transaction as the row; on PostgreSQL a GIN index over the same text. Existing runs are
backfilled. A new table `corrections` records what a person said a step's output should have been.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from daemon.store.searchtext import name_words, output_words

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 2000  # runs backfilled per round trip

# The PostgreSQL document; daemon/store/search.py queries this exact expression so the index is used.
# Punctuation becomes a space first, so `12.5` or `INV-2026` are words as in SQLite's index and
# in daemon/store/search.py's queries (PostgreSQL's parser would keep them whole).
PG_DOCUMENT = (
    "to_tsvector('simple', regexp_replace(coalesce(search_name, '') || ' ' || coalesce(search_text, '') || ' ' || "
    "coalesce(error, ''), '[[:punct:]]+', ' ', 'g'))"
)

_FTS_COLUMNS = "search_name, search_text, error"
_SQLITE_FTS = (
    f"CREATE VIRTUAL TABLE runs_fts USING fts5({_FTS_COLUMNS}, content='runs', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')",
    # External content: the index is told the old values to remove and the new ones to add.
    f"""CREATE TRIGGER runs_fts_insert AFTER INSERT ON runs BEGIN
        INSERT INTO runs_fts(rowid, {_FTS_COLUMNS}) VALUES (new.id, new.search_name, new.search_text, new.error);
    END""",
    f"""CREATE TRIGGER runs_fts_delete AFTER DELETE ON runs BEGIN
        INSERT INTO runs_fts(runs_fts, rowid, {_FTS_COLUMNS})
        VALUES ('delete', old.id, old.search_name, old.search_text, old.error);
    END""",
    f"""CREATE TRIGGER runs_fts_update AFTER UPDATE OF {_FTS_COLUMNS} ON runs BEGIN
        INSERT INTO runs_fts(runs_fts, rowid, {_FTS_COLUMNS})
        VALUES ('delete', old.id, old.search_name, old.search_text, old.error);
        INSERT INTO runs_fts(rowid, {_FTS_COLUMNS}) VALUES (new.id, new.search_name, new.search_text, new.error);
    END""",
)


def upgrade() -> None:
    op.add_column("runs", sa.Column("search_name", sa.Text(), nullable=True))
    op.add_column("runs", sa.Column("search_text", sa.Text(), nullable=True))
    # The dashboard: a workflow's runs newest first (keyset pages), and the overview's time windows.
    op.create_index(op.f("ix_runs_workflow_id"), "runs", ["workflow", "id"])
    op.create_index(op.f("ix_runs_created_at"), "runs", ["created_at"])
    _create_corrections()
    _backfill()
    if op.get_bind().dialect.name == "sqlite":
        for statement in _SQLITE_FTS:
            op.execute(statement)
        op.execute("INSERT INTO runs_fts(runs_fts) VALUES ('rebuild')")
    else:
        op.execute(f"CREATE INDEX ix_runs_search ON runs USING gin ({PG_DOCUMENT})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("runs_fts_update", "runs_fts_delete", "runs_fts_insert"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS runs_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_runs_search")
    op.drop_index(op.f("ix_runs_created_at"), table_name="runs")
    op.drop_index(op.f("ix_runs_workflow_id"), table_name="runs")
    op.drop_index(op.f("ix_corrections_run_id"), table_name="corrections")
    op.drop_table("corrections")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("search_text")
        batch.drop_column("search_name")


def _create_corrections() -> None:
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("change", sa.JSON(), nullable=False),
        sa.Column("output", sa.JSON(), nullable=False),
        sa.Column("original", sa.JSON(), nullable=True),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corrections")),
        sa.CheckConstraint("kind IN ('label', 'fields', 'text')", name=op.f("ck_corrections_kind")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_corrections_run_id_runs"), ondelete="CASCADE"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_corrections_run_id"), "corrections", ["run_id"])


def _backfill() -> None:
    """Fill the search columns of the runs recorded before this revision, a batch at a time."""
    runs = sa.table(
        "runs", sa.column("id", sa.Integer), sa.column("input_path", sa.Text), sa.column("outputs", sa.JSON),
        sa.column("search_name", sa.Text), sa.column("search_text", sa.Text),
    )  # fmt: skip
    bind = op.get_bind()
    update = (
        sa.update(runs)
        .where(runs.c.id == sa.bindparam("b_id"))
        .values(search_name=sa.bindparam("b_name"), search_text=sa.bindparam("b_text"))
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(runs.c.id, runs.c.input_path, runs.c.outputs).where(runs.c.id > last).order_by(runs.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        values = [
            {"b_id": row.id, "b_name": name_words(row.input_path), "b_text": output_words(row.outputs)} for row in rows
        ]
        bind.execute(update, values)
        last = rows[-1].id

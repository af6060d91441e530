"""Runs: mark dry runs, so nothing later consumes them.

File names that are not valid UTF-8 need no schema change: `input_path`, `dedupe_key` and `error`
stay TEXT and hold such a name in the lossless form of `daemon/store/lossless.py`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (SQLite has it for a NOT NULL column with a constant default): a batch
    # rebuild of `runs` would drop the full-text triggers of 0003 with the old table.
    op.add_column(
        "runs",
        sa.Column("dry_run", sa.Boolean(create_constraint=False), nullable=False, server_default=sa.text("false")),
    )


def downgrade() -> None:
    op.drop_column("runs", "dry_run")  # SQLite 3.35+ drops a column in place, keeping the triggers

"""Runs: mark dry runs, so nothing later consumes them.

File names that are not valid UTF-8 need no schema change: `input_path`, `dedupe_key` and `error`
stay TEXT and hold such a name in the lossless form of `daemon/store/lossless.py`.

Revision ID: 0004
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column("dry_run", sa.Boolean(create_constraint=False), nullable=False, server_default=sa.text("false"))
        )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("dry_run")

"""Model servers: every recorded call names the server that answered it and why its answer ended.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable: calls recorded before this revision, or that found no server, name none.
    with op.batch_alter_table("model_calls") as batch:
        batch.add_column(sa.Column("server", sa.Text(), nullable=True))
        batch.add_column(sa.Column("done_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_calls") as batch:
        batch.drop_column("done_reason")
        batch.drop_column("server")

"""Model servers: every recorded call names the server that answered it and why its answer ended.

Revision ID: 0005
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs, nullable: calls recorded before this revision, or that reached no server,
    # name none. (No batch rebuild: it would drop any trigger defined on the table.)
    op.add_column("model_calls", sa.Column("server", sa.Text(), nullable=True))
    op.add_column("model_calls", sa.Column("done_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("model_calls", "done_reason")  # SQLite 3.35+ drops a column in place
    op.drop_column("model_calls", "server")

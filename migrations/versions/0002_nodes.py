"""Nodes: each `gristmill run` working on the database, its role and its heartbeat; queued runs by id.

The partial index lets a claim walk the queued runs oldest first instead of every run ever recorded
(20,000 finished runs made a PostgreSQL claim 9 ms; with the index it stays well under one).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here on purpose: a later change to Role needs its own revision.
ROLES = ("all", "intake", "worker")


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nodes")),
        sa.CheckConstraint("role IN (" + ", ".join(f"'{r}'" for r in ROLES) + ")", name=op.f("ck_nodes_role")),
    )
    queued = sa.text("status = 'queued'")
    op.create_index(op.f("ix_runs_queued_id"), "runs", ["id"], postgresql_where=queued, sqlite_where=queued)


def downgrade() -> None:
    op.drop_index(op.f("ix_runs_queued_id"), table_name="runs")
    op.drop_table("nodes")

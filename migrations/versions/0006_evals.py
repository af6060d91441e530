"""Evals, shadow answers, and what a correction's refile did.

`evals` keeps each comparison of a candidate model with a workflow's recorded runs (`gristmill
eval`): the workflow, the model, where the answers came from (a replay, or shadow answers), and
the figures per step as JSON. `shadow_calls` keeps a candidate's answer to a step of a live run
(`shadow:` in a workflow), asked in a spare slot and acting on nothing. `corrections.refile` holds
what `gristmill correct --refile` did with the run's file: its intent first, then the outcome.

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("corrections") as batch:
        batch.add_column(sa.Column("refile", sa.JSON(none_as_null=True), nullable=True))
    op.create_table(
        "evals",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("workflow", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=True),
        sa.Column("run_limit", sa.Integer(), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("agreement", sa.Float(), nullable=True),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evals")),
        sa.CheckConstraint("source IN ('replay', 'shadow')", name=op.f("ck_evals_source")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_evals_workflow_id"), "evals", ["workflow", "id"])
    op.create_table(
        "shadow_calls",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("step_id", sa.Text(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("server", sa.Text(), nullable=True),
        sa.Column("output", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("invalid", sa.Text(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("total_duration_ns", sa.BigInteger(), nullable=True),
        sa.Column("eval_duration_ns", sa.BigInteger(), nullable=True),
        sa.Column("wall_ms", sa.Float(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shadow_calls")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_shadow_calls_run_id_runs"), ondelete="CASCADE"
        ),
        sa.UniqueConstraint("run_id", "step_id", "model", name=op.f("uq_shadow_calls_run_id_step_id_model")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_shadow_calls_run_id"), "shadow_calls", ["run_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_shadow_calls_run_id"), table_name="shadow_calls")
    op.drop_table("shadow_calls")
    op.drop_index(op.f("ix_evals_workflow_id"), table_name="evals")
    op.drop_table("evals")
    with op.batch_alter_table("corrections") as batch:
        batch.drop_column("refile")

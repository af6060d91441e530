"""Runs by the time they ended: a count of the runs that ended since a moment reads only those.

The daemon's progress line and `run --once` counted every run in every status to tell what had
ended since their last look (a walk of the whole history: 85 ms at a million runs, every few
seconds). A partial index of the ended runs by `finished_at` (and `status`, so the count reads
the index alone) serves that count with the recent runs only; queued and running runs, which have
no `finished_at`, are not in it, so queueing a run does not write to it.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    ended = sa.text("finished_at IS NOT NULL")
    op.create_index(
        op.f("ix_runs_finished_at_status"), "runs", ["finished_at", "status"], postgresql_where=ended, sqlite_where=ended
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_runs_finished_at_status"), table_name="runs")

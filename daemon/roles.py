"""What one `gristmill run` does: everything, only intake (watch and schedule) or only work runs."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """`gristmill run --role`: several nodes on one PostgreSQL database can split the work."""

    ALL = "all"
    INTAKE = "intake"  # watches folders, fires schedules, reads mailboxes (every trigger); executes nothing
    WORKER = "worker"  # executes queued runs; watches nothing (a model box without the folders)

    @property
    def takes_in(self) -> bool:
        """Whether this node runs the triggers (folders, schedules, mailboxes) that queue runs."""
        return self is not Role.WORKER

    @property
    def works(self) -> bool:
        """Whether this node executes runs."""
        return self is not Role.INTAKE

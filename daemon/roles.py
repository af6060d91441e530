"""What one `gristmill run` does: everything, only intake (watch and schedule) or only work runs."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    """`gristmill run --role`: several nodes on one PostgreSQL database can split the work."""

    ALL = "all"
    INTAKE = "intake"  # watches folders and fires schedules; executes nothing
    WORKER = "worker"  # executes queued runs; watches nothing (a model box without the folders)

    @property
    def takes_in(self) -> bool:
        """Whether this node watches folders and fires schedules."""
        return self is not Role.WORKER

    @property
    def works(self) -> bool:
        """Whether this node executes runs."""
        return self is not Role.INTAKE


class NoWatcher:
    """The folder watcher of a worker node: it watches nothing and is always well."""

    def configure(self, workflows: list[Any]) -> None:
        """Nothing to watch on a worker node."""

    def start(self) -> None:
        """Nothing to start."""

    def scan(self) -> int:
        return 0

    def settle_pending(self) -> None:
        """Nothing pending."""

    def alive(self) -> bool:
        return True

    def stop(self) -> None:
        """Nothing to stop."""


class NoScheduler:
    """The scheduler of a worker node: it fires nothing and is always well."""

    def configure(self, workflows: Iterable[Any]) -> None:
        """Nothing to schedule on a worker node."""

    def start(self) -> None:
        """Nothing to start."""

    def fire_all(self, *, coalesce: bool = False) -> int:
        return 0

    def alive(self) -> bool:
        return True

    def stop(self) -> None:
        """Nothing to stop."""

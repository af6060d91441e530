"""Recording how a run ended: succeeded, skipped, failed (its file per `on_failure`), or queued again.

Every write goes through the store outage: when the database fails, the worker waits and writes
the outcome once the database works again; a failing write never ends the worker.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from daemon import metrics
from daemon.domain import Run, RunStatus
from daemon.engine.on_failure import after_failure
from daemon.engine.resource_outage import StoreOutage
from daemon.errors import StoreError
from daemon.store import RunStore
from daemon.workflow import Workflow

log = logging.getLogger("gristmill")

T = TypeVar("T")


class Outcomes:
    """Writes the outcome of runs held under `owner`'s lease, waiting out store outages."""

    def __init__(
        self,
        store: RunStore,
        owner: str,
        *,
        store_outage: StoreOutage,
        stopping: threading.Event,
        workflows: Callable[[], Mapping[str, Workflow]],
        retry_base: float,
        clock: Callable[[], datetime],
        moved: Callable[[Run, Path], None] = lambda run, destination: None,
    ) -> None:
        self.store, self.owner, self.store_outage, self.stopping = store, owner, store_outage, stopping
        self.workflows, self.retry_base, self.clock = workflows, retry_base, clock
        self.moved = moved  # other workflows taking the file record who moved it (engine/shared.py)
        self._lock = threading.Lock()
        self._waits: dict[int, int] = {}  # run id → outages of a service other than the model in a row

    def write(self, op: Callable[[], T]) -> T:
        """`op()` against the store, tried again while the store is out (StoreError when stopping or fatal)."""
        return self.store_outage.call(op, self.stopping)

    def finish(
        self, run: Run, status: RunStatus, started: float, *, outputs: Any = None, error: str | None = None
    ) -> bool:
        """End the run as `status` and log it; False when another worker had taken it over."""
        with self._lock:
            self._waits.pop(run.id, None)
        done = self.write(lambda: self.store.finish(run.id, self.owner, status, outputs=outputs, error=error))
        return self._ended(run, status, started, done, error)

    def succeed_and_claim(
        self, run: Run, started: float, outputs: Any, *, lease_seconds: float, workflows: list[str]
    ) -> tuple[bool, Run | None]:
        """`finish` as succeeded, and the next run claimed for this owner in the same write (or None)."""
        with self._lock:
            self._waits.pop(run.id, None)

        def op() -> tuple[bool, Run | None]:
            succeeded = RunStatus.SUCCEEDED
            return self.store.finish_and_claim(
                run.id, self.owner, succeeded, outputs=outputs, lease_seconds=lease_seconds, workflows=workflows
            )

        done, claimed = self.write(op)
        return self._ended(run, RunStatus.SUCCEEDED, started, done, None), claimed

    def _ended(self, run: Run, status: RunStatus, started: float, done: bool, error: str | None) -> bool:
        """Log how the run ended (or that another worker had it); `done`, passed on."""
        if not done:
            log.warning("run %d (%s) was taken over by another worker; its result is dropped", run.id, run.workflow)
            return False
        took = time.monotonic() - started
        what = run.input_path or "scheduled"
        suffix = f": {error}" if error else ""
        level = logging.WARNING if status is RunStatus.FAILED else logging.INFO
        fields = {"run_id": run.id, "workflow": run.workflow, "duration_ms": round(took * 1000), "outcome": status}
        log.log(level, "run %d %s %s %s in %.2fs%s", run.id, run.workflow, what, status, took, suffix, extra=fields)
        metrics.run_finished(run, status, took)
        return True

    def release(self, run: Run, *, error: str, delay: float | None = None, refund: bool = False) -> bool:
        """Back to the queue, due after `delay` seconds (None: at once); `refund`: the attempt does not count."""
        not_before = None if delay is None else self.clock() + timedelta(seconds=delay)
        return self.write(
            lambda: self.store.release(run.id, self.owner, not_before=not_before, error=error, refund_attempt=refund)
        )

    def wait_out(self, run: Run, error: str, cap: float) -> None:
        """Another service (a mail server) is away: only this run waits, with backoff, its attempt refunded."""
        with self._lock:
            outages = self._waits[run.id] = self._waits.get(run.id, 0) + 1
        self.release(run, error=error, delay=min(cap, self.retry_base * 2 ** (outages - 1)), refund=True)
        if outages == 1:
            log.warning("run %d (%s) waits: %s; trying again with backoff", run.id, run.workflow, error)

    def retry_or_fail(self, run: Run, error: str, started: float, *, final: bool = False) -> None:
        """A failed attempt: tried again after a backoff, or failed for good when out of attempts (or `final`)."""
        if final or run.attempts >= run.max_attempts:
            self.failed(run, error, started)
            return
        delay = self.retry_base * 2 ** (run.attempts - 1)
        self.release(run, error=error, delay=delay)
        log.info(
            "run %d (%s) attempt %d failed, retrying in %.0fs: %s", run.id, run.workflow, run.attempts, delay, error,
            extra={"run_id": run.id, "workflow": run.workflow, "outcome": "retry"},
        )  # fmt: skip

    def failed(self, run: Run, error: str, started: float) -> None:
        """Failed for good: the file goes where `on_failure` says, and the error says where it is."""
        where = self._file_now(run)
        moved = after_failure(self.workflows().get(run.workflow), run, error, where)
        if moved is not None:
            error = f"{error}; the file was moved to {moved} (on_failure)"
            self.moved(run, moved)
        elif where is not None and str(where) != run.input_path:
            error = f"{error}; the file is at {where}, where an earlier step of this run moved it"
        self.finish(run, RunStatus.FAILED, started, error=error)

    def _file_now(self, run: Run) -> Path | None:
        """Where the run's file is now: where a step moved it (by its stored outputs), else its input."""
        try:
            recorded = self.store.get(run.id).file_now()
        except StoreError:  # what the run held when it was claimed; its steps of this attempt are unknown
            recorded = run.file_now()
        for candidate in (recorded, run.input_path):
            if candidate and os.path.lexists(candidate):
                return Path(candidate)
        return None

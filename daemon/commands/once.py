"""`gristmill run --once`: work through the backlog with progress shown, then say what happened.

On a terminal: a rich progress bar (runs done of all runs known, how they ended), with the log lines
printed above it. Otherwise (a pipe, a file, cron): plain log lines, at the start, whenever another
tenth of the runs is done (at most one a second) and at the end.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from daemon.app import App
from daemon.domain import RunStatus
from daemon.engine.progress import Progress as QueueProgress
from daemon.words import count

PLAIN_GAP = 1.0  # seconds at least between two plain lines

log = logging.getLogger("gristmill")


def run_once(app: App, echo: Callable[..., None]) -> int:
    """Process the backlog with progress on stderr; print the outcome; the exit code."""
    console = Console(stderr=True)
    with _shown(console) as show:
        report = app.run_once(show)
    counts = ", ".join(f"{n} {s.value}" for s, n in report.counts.items() if n) or "nothing to do"
    echo(f"processed: {counts}")
    if report.left_queued:
        why = f" because {report.reason}" if report.reason else ""
        are = "is" if report.left_queued == 1 else "are"
        echo(f"{count(report.left_queued, 'run')} {are} still queued{why}; they run on the next start", err=True)
    return 1 if report.left_queued or report.counts.get(RunStatus.FAILED) else 0


@contextmanager
def _shown(console: Console) -> Iterator[Callable[[QueueProgress], None]]:
    if not console.is_terminal:
        yield PlainLines()
        return
    bar = Progress(
        TextColumn("[bold]runs"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[outcomes]}"),
        TimeElapsedColumn(), console=console, transient=False,
    )  # fmt: skip
    task = bar.add_task("runs", total=None, outcomes="")
    with bar, _logs_to(sys.stderr):  # inside the bar, sys.stderr prints above it

        def show(progress: QueueProgress) -> None:
            bar.update(task, completed=progress.done, total=progress.total, outcomes=progress.outcomes())

        yield show


@contextmanager
def _logs_to(stream: IO[str]) -> Iterator[None]:
    """While the bar is shown, log lines go through its console (printed above the bar, not through it)."""
    handlers = [h for h in logging.getLogger("gristmill").handlers if isinstance(h, logging.StreamHandler)]
    previous = [h.setStream(stream) for h in handlers]
    try:
        yield
    finally:
        for handler, old in zip(handlers, previous, strict=True):
            if old is not None:
                handler.setStream(old)


class PlainLines:
    """Progress as log lines: at the start, each further tenth done (at most one a second), at the end."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._shown: tuple[int, int] | None = None
        self._at = 0.0

    def __call__(self, progress: QueueProgress) -> None:
        state = (progress.done, progress.total)
        if state == self._shown or progress.total == 0:
            return
        step = max(1, progress.total // 10)
        shown_done = -step if self._shown is None else self._shown[0]
        if progress.final or (progress.done - shown_done >= step and self.clock() - self._at >= PLAIN_GAP):
            log.info("progress: %s", progress.line())
            self._shown, self._at = state, self.clock()

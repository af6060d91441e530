"""Where the watcher hands files to intake: each file version once, a batch per write transaction.

A settle pass or a scan may find hundreds of files at once. Queued one by one, each paid its own
BEGIN, COMMIT and turn on the store's write lock, which cost more than its insert; so the files
go to `Intake.files` in batches, and each batch is one transaction.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from daemon import words
from daemon.domain import Run
from daemon.engine.intake import Intake
from daemon.errors import GristmillError, StoreError
from daemon.triggers.submitted import LINK, Submitted
from daemon.workflow import Workflow

log = logging.getLogger("gristmill")

# Files queued at most per write transaction: bounded so that the workers, who take turns with
# intake on the store's write lock, never wait long behind a big pass or a start-up backlog.
QUEUE_BATCH = 256


@dataclass(frozen=True)
class _Offer:
    """A file version to hand to intake, and what `Submitted` remembers it by."""

    workflow: Workflow
    path: Path
    key: tuple[str, str]
    signature: tuple[int, int, int]


class Handover:
    """Offers the watcher's files to intake, skipping versions already submitted; refuses links.

    `retry(path)` puts a file the database could not take back in the watcher's queue.
    """

    def __init__(self, intake: Intake, submitted: Submitted, retry: Callable[[Path], None]) -> None:
        self.intake, self.submitted, self.retry = intake, submitted, retry

    def offer_all(
        self, files: Iterable[tuple[Workflow, Path]], *, seen: Callable[[Run], None] = lambda run: None
    ) -> int:
        """Submit each file's version unless it was submitted already; how many were submitted (or refused).

        `seen` hears of each run a batch queued or found (a paced scan counts them).
        """
        count, batch = 0, []
        for workflow, path in files:
            found = self._offerable(workflow, path)
            if isinstance(found, _Offer):
                batch.append(found)
            else:
                count += found
            if len(batch) == QUEUE_BATCH:
                count, batch = count + self._submit(batch, seen), []
        return count + (self._submit(batch, seen) if batch else 0)

    def refuse_link(self, workflow: Workflow, path: Path) -> bool:
        """Record a symbolic link as skipped, once; whether it was recorded now."""
        key = (workflow.name, str(path))
        if self.submitted.has(key, LINK):
            return False
        try:
            self.intake.refuse(workflow, path, f"{path} is a symbolic link; gristmill does not follow links")
        except Exception:
            log.exception("could not record the symbolic link %s for %s", path, workflow.name)
            return False
        self.submitted.add(key, LINK)
        return True

    def _offerable(self, workflow: Workflow, path: Path) -> _Offer | bool:
        """This version of the file to submit, or whether it was dealt with here (a link refused)."""
        try:
            info = os.lstat(path)
        except OSError:
            return False  # gone before it settled: nothing to do
        if stat.S_ISLNK(info.st_mode):
            return self.refuse_link(workflow, path)
        if not stat.S_ISREG(info.st_mode):
            return False
        offer = _Offer(workflow, path, (workflow.name, str(path)), (info.st_ino, info.st_size, info.st_mtime_ns))
        return False if self.submitted.has(offer.key, offer.signature) else offer

    def _submit(self, batch: list[_Offer], seen: Callable[[Run], None]) -> int:
        """Queue a batch in one write transaction; how many of its files count as submitted."""
        try:
            outcomes = self.intake.files([(offer.workflow, offer.path) for offer in batch])
        except StoreError as exc:  # the transaction failed: none of the batch was queued
            outcomes = [exc] * len(batch)
        except Exception:  # a bad batch must not stop the watcher; the rescan offers its files again
            shown = ", ".join(str(offer.path) for offer in batch[:3]) + (", …" if len(batch) > 3 else "")
            log.exception("could not queue %s (%s)", words.count(len(batch), "file"), shown)
            return 0
        return sum(self._submitted(offer, outcome, seen) for offer, outcome in zip(batch, outcomes, strict=True))

    def _submitted(self, offer: _Offer, outcome: object, seen: Callable[[Run], None]) -> bool:
        """Act on what intake did with one file; whether it counts as submitted."""
        if isinstance(outcome, StoreError):  # the database is away (said once by intake): offered again soon
            self.retry(offer.path)
        elif isinstance(outcome, GristmillError):  # vanished or unreadable: said once, found again by a rescan
            log.warning("not queued for %s: %s", offer.workflow.name, outcome)
        elif isinstance(outcome, Exception):  # one bad file must not stop the watcher
            log.error("could not queue %s for %s", offer.path, offer.workflow.name, exc_info=outcome)
            return False
        else:
            self.submitted.add(offer.key, offer.signature)
            seen(outcome[0])  # type: ignore[index]  # outcome is (run, created) here
        return True

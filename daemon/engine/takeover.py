"""Runs whose process died, or whose lease lapsed, go back to the queue; a poison document is failed.

**The poison rule.** A process that dies during a run is the document's fault only if it died while
doing the run's own work in that process (its journal, `journal.py`, says WORKING): reading the
file, running the steps, filing it. Such a death uses up the attempt, and a run whose attempts are
all used up that way fails as a poison. A death while the run waited on the model server or the
sandboxed extraction child (WAITING) uses up nothing: whatever killed the process, it was not this
document's work. Neither does a lapsed lease of a process that is still alive (it stalled, or lost
the database for a while). When the dead process ran on another machine its journal cannot be
read and the death counts, as it always did: a document that kills every node must not go round
forever.

**At once.** A lease owner names its host and pid (`new_owner`); a process on this machine whose
pid is gone is dead now, so its runs come back at the next start (and at every heartbeat of any
gristmill on this machine) instead of after the lease. `gone_here` is the one place that decides
it, so that it can move to a table of nodes.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from daemon.domain import Run
from daemon.engine.journal import SUFFIX, Phase, journal_path, read_journal
from daemon.store import RunStore, utcnow
from daemon.store.runs import REQUEUED_ERROR

log = logging.getLogger("gristmill")

WAITED = (
    "gristmill stopped while this run waited on the model server or the extraction process; "
    "queued again without using up an attempt"
)
STALLED = (
    "the lease of this run lapsed while its process was alive (busy, or cut off from the database); "
    "queued again without using up an attempt"
)
DIED = "gristmill died during this run's own work (attempt {n} of {max}); queued again"
POISON = (
    "gristmill died during this run's own work (reading its file or running its steps, not while waiting "
    "on the model server or the extraction process) on its last of {max} attempts; giving up: this file "
    "may be what kills gristmill (a poison document)"
)
GAVE_UP = "the worker stopped during this run {n} times (its lease lapsed each time); giving up"


def new_owner(host: str | None = None, pid: int | None = None) -> str:
    """A lease owner for this process: host, pid and a random part (unique across restarts and machines)."""
    return f"{host or socket.gethostname()}-{pid or os.getpid()}-{secrets.token_hex(3)}"


def owner_process(owner: str) -> tuple[str, int] | None:
    """The (host, pid) a lease owner names; None for an owner of another form."""
    host, _, rest = owner.rpartition("-")
    host, _, pid = host.rpartition("-")
    return (host, int(pid)) if host and pid.isdigit() and rest else None


def gone_here(owner: str, host: str) -> bool:
    """Whether `owner` is a process of this host that no longer runs."""
    named = owner_process(owner)
    return named is not None and named[0] == host and not _alive(named[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:  # a zombie (dead, not yet reaped by its parent) is dead
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return True


@dataclass(frozen=True)
class Verdict:
    """What becomes of a run taken back: its error, and whether its attempt is refunded or it fails."""

    error: str
    refund: bool
    give_up: bool = False


class Takeover:
    """Gives back the runs of dead (or stalled) processes; one per process, called at start and every heartbeat."""

    def __init__(
        self,
        store: RunStore,
        journals: Path | None,
        *,
        me: str,
        in_hand: Callable[[], set[int]] = set,
        host: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """`me`: this process's lease owner; `in_hand()`: the runs its workers are working on (never taken)."""
        self.store, self.journals, self.me, self.in_hand, self.clock = store, journals, me, in_hand, clock
        self.host = host or socket.gethostname()

    def sweep(self) -> list[int]:
        """Give back what dead or stalled processes hold; the ids taken back (queued or failed)."""
        now, taken, phases = self.clock(), [], {}
        running, mine = self.store.running(), self.in_hand()
        for run in running:
            # A lease of this process that lapsed while its worker still works: renewed when it can be.
            verdict = None if run.lease_owner == self.me and run.id in mine else self._verdict(run, now, phases)
            if verdict is None:
                continue
            if self.store.take_back(run, error=verdict.error, refund_attempt=verdict.refund, give_up=verdict.give_up):
                taken.append(run.id)
                level = logging.WARNING if verdict.give_up else logging.INFO
                log.log(level, "run %d (%s): %s", run.id, run.workflow, verdict.error)
        self._forget_journals({run.lease_owner for run in running if run.id not in taken})
        return taken

    def _verdict(self, run: Run, now: datetime, phases: dict[str, dict[int, Phase] | None]) -> Verdict | None:
        owner = run.lease_owner or ""
        dead_here = gone_here(owner, self.host)
        lapsed = run.lease_expires_at is None or run.lease_expires_at < now
        if not dead_here and not lapsed:
            return None
        named = owner_process(owner)
        if not dead_here and (owner == self.me or (named is not None and named[0] == self.host)):
            return Verdict(STALLED, refund=True)  # alive on this machine: not a crash at all
        if dead_here and self._phase(owner, run.id, phases) is Phase.WAITING:
            return Verdict(WAITED, refund=True)
        give_up = run.attempts >= run.max_attempts
        if dead_here:
            return Verdict((POISON if give_up else DIED).format(n=run.attempts, max=run.max_attempts), False, give_up)
        return Verdict(GAVE_UP.format(n=run.attempts) if give_up else REQUEUED_ERROR, False, give_up)

    def _phase(self, owner: str, run_id: int, phases: dict[str, dict[int, Phase] | None]) -> Phase | None:
        if self.journals is None:
            return None
        if owner not in phases:
            phases[owner] = read_journal(journal_path(self.journals, owner))
        return (phases[owner] or {}).get(run_id)

    def _forget_journals(self, holding: set[str | None]) -> None:
        """Remove the journals of dead processes of this host that hold no run any more."""
        if self.journals is None:
            return
        for path in self.journals.glob(f"*{SUFFIX}"):
            owner = path.name[: -len(SUFFIX)]
            if owner not in holding and gone_here(owner, self.host):
                path.unlink(missing_ok=True)

"""The run state machine: which status changes are allowed, and which only by a retry."""

from __future__ import annotations

from daemon.domain import RunStatus
from daemon.errors import InvalidTransition

_Q, _R = RunStatus.QUEUED, RunStatus.RUNNING
_S, _F, _K = RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.SKIPPED

# Ordinary progress of a run. running -> queued: released by its worker or its lease lapsed.
_FORWARD: dict[RunStatus, frozenset[RunStatus]] = {
    _Q: frozenset({_R, _K}),
    _R: frozenset({_Q, _S, _F, _K}),
    _S: frozenset(),
    _F: frozenset(),
    _K: frozenset(),
}

# What a user's retry may do: a failed or skipped run goes back to the queue. A succeeded run's record
# is never overwritten (its outputs say where its file went); running the workflow again is a new run.
_RETRY: dict[RunStatus, frozenset[RunStatus]] = {
    _Q: frozenset(),
    _R: frozenset(),
    _S: frozenset(),
    _F: frozenset({_Q}),
    _K: frozenset({_Q}),
}


def targets(old: RunStatus, *, retry: bool = False) -> frozenset[RunStatus]:
    """The statuses a run in `old` may move to (by a retry when `retry`)."""
    return (_RETRY if retry else _FORWARD)[RunStatus(old)]


def allowed(old: RunStatus, new: RunStatus, *, retry: bool = False) -> bool:
    """Whether `old` -> `new` is a valid change (by a retry when `retry`)."""
    return RunStatus(new) in targets(old, retry=retry)


def check_transition(old: RunStatus, new: RunStatus, *, retry: bool = False) -> None:
    """Raise InvalidTransition unless `old` -> `new` is allowed."""
    if not allowed(old, new, retry=retry):
        raise InvalidTransition(str(old), str(new), retry)


def sources(new: RunStatus, *, retry: bool = False) -> frozenset[RunStatus]:
    """The statuses from which a run may move to `new` (for SQL WHERE clauses)."""
    return frozenset(old for old in RunStatus if allowed(old, new, retry=retry))

"""Test-only crash points: kill this process at a named point, to prove recovery from disk.

Off unless the environment variable GRISTMILL_FAILPOINT names a point. It is the one environment
read outside daemon/settings.py, on purpose: a failpoint is not a setting a user should find in
`gristmill.toml`, and reading it here keeps it out of every code path but `hit()`.
"""

from __future__ import annotations

import os
import signal

ENV = "GRISTMILL_FAILPOINT"

# The points the code marks; a test names one of them.
POINTS = frozenset({
    "after_intent",              # a route or write step recorded where it will put a file, before doing it
    "after_link_before_unlink",  # a move put the file at its destination; the source is still there
    "after_move_before_commit",  # a move is complete on disk; its step output is not recorded yet
    "after_write_before_commit", # a write step's file exists; its step output is not recorded yet
    "before_finish",             # every step is recorded; the run is not marked succeeded yet
    "document_read",             # a run's document was read; its own work in this process goes on
    "mid_enqueue_batch",         # a batch of files is being queued: one inserted, nothing committed
})  # fmt: skip

# Points outside the file moves (the crash tests of tests/test_crash.py go through POINTS only).
MAIL_POINTS = frozenset({
    "mail_after_copy",           # a mail move without MOVE copied the message; the original is not expunged yet
})  # fmt: skip

# "point", or "point:marker" to die only where the text given to hit() contains the marker (a poison document).
_ACTIVE, _, _MARKER = (os.environ.get(ENV) or "").partition(":")


def hit(point: str, text: str | None = None) -> None:
    """Die at once with SIGKILL when `point` is the active failpoint (and `text` holds its marker, if any)."""
    assert point in POINTS or point in MAIL_POINTS, point
    if _ACTIVE == point and (not _MARKER or _MARKER in (text or "")):
        os.kill(os.getpid(), signal.SIGKILL)

"""Stop signals that come before the daemon can act on them: noted from the first moment, handed over.

`gristmill run` takes a while to import its libraries and open its database; a SIGTERM in that time
would kill it (exit -15) if nothing caught it yet. `hold()` runs first thing in `daemon.__main__`:
it only notes SIGTERM and SIGINT. `gristmill run` hands what was noted to its `Lifecycle` (stop as
asked, exit 0); every other command calls `release()`, which restores the default and delivers a
noted signal, so `check` or `runs` still stop at once.
"""

from __future__ import annotations

import signal
from types import FrameType

SIGNALS = (signal.SIGTERM, signal.SIGINT)

_noted: list[int] = []
_held = False


def hold() -> None:
    """Note stop signals instead of dying of them, until `take()` or `release()`."""
    global _held
    for signum in SIGNALS:
        signal.signal(signum, _note)
    _held = True


def take() -> list[int]:
    """The signals noted so far (the caller has installed its own handlers)."""
    global _held
    _held = False
    noted = list(_noted)
    _noted.clear()
    return noted


def release() -> None:
    """Give the signals their default meaning again, and deliver any noted one now."""
    if not _held:
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in take():
        signal.raise_signal(signum)


def _note(signum: int, frame: FrameType | None) -> None:
    _noted.append(signum)

"""The watched folder itself: created when missing (and said so), polled when inotify cannot watch it."""

from __future__ import annotations

import errno
import logging
import os
from pathlib import Path

log = logging.getLogger("gristmill")

_LIMIT_SYSCTL = {
    errno.ENOSPC: "fs.inotify.max_user_watches",
    errno.EMFILE: "fs.inotify.max_user_instances",
}


def absolute_folder(path: Path) -> Path:
    """A folder of a workflow (a watch's `path`, a schedule's `files` input) as the absolute path its
    events, scans and listings name: `~` expanded, symbolic links kept."""
    return Path(os.path.abspath(path.expanduser()))


def ensure_root(root: Path, name: str) -> bool:
    """Create a missing watched folder, and say so; False (logged) when there is no folder to watch."""
    try:
        root.mkdir(parents=True)
        log.info("created the watched folder %s for %s (it did not exist)", root, name)
    except FileExistsError:
        pass
    except OSError as exc:
        log.error("cannot watch %s for %s: the folder is missing and cannot be created (%s); "
                  "create it and restart", root, name, exc.strerror)  # fmt: skip
        return False
    if not root.is_dir():
        log.error("cannot watch %s for %s: it is a file, not a folder; point path at a folder", root, name)
        return False
    return True


def polling_reason(exc: OSError, root: Path, interval: float) -> str:
    """One log line: why inotify failed on `root`, that we poll instead, and what to raise."""
    sysctl = _LIMIT_SYSCTL.get(exc.errno or 0)
    fix = f"; to use inotify again raise {sysctl} (sudo sysctl -w {sysctl}=<higher>)" if sysctl else ""
    return f"cannot use inotify on {root} ({exc.strerror or exc}); polling it every {interval:g}s instead{fix}"

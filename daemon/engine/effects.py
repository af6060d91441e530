"""The side effects a run may have on files: moving, copying, writing; each one crash-safe.

Before a file is touched, the exact destination name is recorded as the step's *intent*; after a
crash, `recover` looks at the disk: a destination holding the recorded content counts as done (a
move whose source name is still there is finished by removing the source), anything else is done
again. So there is never a second copy of a file, and never an overwrite.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from daemon import failpoints
from daemon.errors import UnsafePathError
from daemon.files import ops
from daemon.files.hashing import sha256_bytes, sha256_file

Placement = Literal["move_to", "copy_to"]


@dataclass(frozen=True)
class Effects:
    """Moves, copies and writes for one step of one run; in a dry run, only where they would go."""

    dry_run: bool
    # Stores this step's intent (the exact destination) before the file is touched; raises
    # LeaseLost when the run is no longer this worker's, so nothing is touched then.
    record: Callable[[dict[str, Any]], None]
    # This step's intent from an earlier attempt, found complete on disk (see `recover`).
    done: dict[str, Any] | None = None

    def place(self, kind: Placement, source: Path, folder: Path, sha256: str | None = None) -> Path:
        """Move or copy `source` into `folder` under a free name; return the destination."""
        # Strings, made once: pathlib's parsing on every step of every move showed in the profile.
        src, into = str(source), str(folder)
        src_folder, name = os.path.split(src)
        if kind == "move_to" and (src_folder or ".") == into:
            return source  # already there: a move would only rename it (a refile to the folder it is in)
        if self.dry_run:
            return next(p for p in ops.candidates(folder, name) if not p.exists())
        finished = self._finished(kind, "folder", into)
        if finished is not None:
            return finished
        intent = {"intent": kind, "source": src, "folder": into, "sha256": sha256 or sha256_file(source)}
        if kind == "copy_to":
            return self._claim(into, name, intent, lambda dest: ops.copy_exact(source, Path(dest)))
        with ops.held(src):  # another workflow taking the same file waits, then finds it gone
            dest = self._claim(into, name, intent, lambda dest: ops.place_exact(src, dest))
            failpoints.hit("after_link_before_unlink")
            ops.remove_moved(src)
        failpoints.hit("after_move_before_commit")
        return dest

    def write(self, path: Path, content: str) -> Path:
        """Write a new file at `path` (suffixed on collision); return where it went."""
        if self.dry_run:
            return path
        finished = self._finished("write", "requested", str(path))
        if finished is not None:
            return finished
        # A file name that is not UTF-8 (lone surrogates) is written as U+FFFD: the file stays valid UTF-8.
        data = content.encode("utf-8", "surrogateescape").decode("utf-8", "replace").encode("utf-8")
        requested = str(path)
        intent = {"intent": "write", "requested": requested, "sha256": sha256_bytes(data)}
        folder, name = os.path.split(requested)
        dest = self._claim(folder, name, intent, lambda dest: ops.write_exact(dest, data))
        failpoints.hit("after_write_before_commit")
        return dest

    def note(self, intent: dict[str, Any]) -> None:
        """Record an action outside the file system (a mail move) before it is done; never in a dry run.

        Such an intent has no destination file, so `recover` drops it and the step runs again: the action
        itself must find what an interrupted try already did.
        """
        if not self.dry_run:
            self.record(intent)

    def _finished(self, kind: str, key: str, wanted: str) -> Path | None:
        """The destination an earlier attempt of this step reached, when it aimed where we aim now."""
        intent = self.done
        if intent is None or intent.get("intent") != kind or intent.get(key) != wanted:
            return None
        return Path(intent["destination"])

    def _claim(self, folder: str, name: str, intent: dict[str, Any], put: Callable[[str], None]) -> Path:
        """Record the first free name as the destination, then put the file there under exactly it."""
        for dest in ops.names(folder, name):
            if os.path.lexists(dest):
                continue
            self.record({**intent, "destination": dest})
            failpoints.hit("after_intent")
            try:
                put(dest)
            except FileExistsError:
                continue  # another run took the name between our look and our link
            return Path(dest)
        raise UnsafePathError(f"no free name for {name} in {folder}", name, Path(folder))


def is_intent(output: Any) -> bool:
    """Whether a stored step output is an intent (the step was interrupted mid-way)."""
    return isinstance(output, dict) and "intent" in output


def recover(outputs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Split an earlier attempt's outputs into finished step outputs and intents complete on disk.

    An intent whose destination holds the recorded content is complete (a move whose source is
    still there is finished by removing the source); any other intent is dropped, so its step runs
    again. Nothing is copied a second time.
    """
    finished: dict[str, Any] = {}
    complete: dict[str, dict[str, Any]] = {}
    for step_id, out in outputs.items():
        if not is_intent(out):
            finished[step_id] = out
            continue
        if "destination" not in out:
            continue  # not a file (a mail action): the step runs again and finds what was done
        # A crash mid-copy or mid-write may have left a hidden temporary file there.
        ops.sweep_temporaries(Path(out["destination"]).parent)
        if _complete(out):
            complete[step_id] = out
    return finished, complete


def _complete(intent: dict[str, Any]) -> bool:
    sha = intent.get("sha256")
    if not sha or not _holds(Path(intent.get("destination", "")), sha):
        return False
    if intent["intent"] == "move_to":
        source = Path(intent["source"])
        if _holds(source, sha):  # linked but not yet unlinked: finish the move
            ops.remove_moved(source)
    return True


def _holds(path: Path, sha: str) -> bool:
    """Whether `path` is a regular file (not a link) whose content has this sha256."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        return sha256_file(path) == sha
    except OSError:
        return False

"""Where hook bodies and fetched mail wait for their run: durable files named by their content.

`put` returns only once the bytes are on disk under their final name (temporary file, fsync, link,
fsync of the folder, and of each folder it had to create), so a caller may acknowledge ("202", or
moving a mail cursor) right after it and a SIGKILL loses nothing. The name is the content's sha256,
so the same body twice is one file, and a file is never overwritten.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from daemon.errors import InputError, UsageError
from daemon.files.ops import fsync_dir, sweep_temporaries, write_exact
from daemon.workflow.fields import NAME_PATTERN

_SUFFIX = re.compile(r"^\.[a-z0-9]{1,10}$")


@dataclass(frozen=True)
class Spooled:
    """A stored body: where it is, its sha256 and size, and whether this call wrote it."""

    path: Path
    sha256: str
    size: int
    created: bool  # False: the same content was already spooled for this workflow


def safe_suffix(suffix: str) -> str:
    """`suffix` lower-cased when it is a plain extension such as `.pdf`, else `.bin`."""
    suffix = suffix.lower()
    return suffix if _SUFFIX.match(suffix) else ".bin"


class InboundSpool:
    """`<data dir>/inbound/<workflow>/<sha256><suffix>`, one file per distinct content."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "inbound"

    def folder(self, workflow: str) -> Path:
        if not NAME_PATTERN.match(workflow):  # names come from validated workflows; a path trick is a defect
            raise UsageError(f"'{workflow}' is not a workflow name")
        return self.root / workflow

    def put(self, workflow: str, data: bytes, suffix: str) -> Spooled:
        """Store `data` durably for `workflow`; the same content again returns the existing file."""
        digest = hashlib.sha256(data).hexdigest()
        folder = self.folder(workflow)
        _make_durable_folder(folder)
        path = folder / f"{digest}{safe_suffix(suffix)}"
        try:
            write_exact(path, data)
        except FileExistsError:
            size = path.stat().st_size
            if size != len(data):  # only a damaged disk gets here: names are hashes of complete files
                raise InputError(f"{path} exists with {size} bytes, not {len(data)}; the spool is damaged") from None
            return Spooled(path, digest, len(data), created=False)
        return Spooled(path, digest, len(data), created=True)

    def sweep(self) -> list[Path]:
        """Remove temporary files that processes killed mid-write left behind; at start-up."""
        if not self.root.is_dir():
            return []
        removed: list[Path] = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.is_symlink()):
            removed += sweep_temporaries(folder)
        return removed


def _make_durable_folder(folder: Path) -> None:
    """Create `folder` and missing parents; each new entry made durable by an fsync of its parent."""
    missing = []
    for parent in (folder, *folder.parents):
        if parent.is_dir():
            break
        missing.append(parent)
    for new in reversed(missing):
        try:
            os.mkdir(new)
        except FileExistsError:
            pass
        fsync_dir(new.parent)

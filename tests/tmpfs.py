"""A small tmpfs the test mounts, to fill it up or make it read-only under a running daemon.

Mounting needs root (`.ci/run` runs as root); elsewhere the tests that need one are skipped with
the reason.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


class Tmpfs:
    """A tmpfs mounted at `path` with `size` bytes of room."""

    def __init__(self, path: Path, size: int) -> None:
        self.path, self.size = path, size
        self.filler = path / ".filler"

    def fill(self) -> int:
        """Take every free byte (and page) with a filler file; the bytes written."""
        written, chunk = 0, 65536
        fd = os.open(self.filler, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        try:
            while chunk:
                try:
                    written += os.write(fd, b"\0" * chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    chunk //= 2
        finally:
            os.close(fd)
        return written

    def free(self) -> None:
        """Remove the filler: the room is back."""
        self.filler.unlink(missing_ok=True)

    def read_only(self, on: bool) -> None:
        """Remount read-only (`on`) or read-write, under whoever has files open there."""
        _run("mount", "-o", f"remount,{'ro' if on else 'rw'}", str(self.path))


def _run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise OSError(f"{' '.join(argv)}: {done.stderr.strip()}")


@contextmanager
def tmpfs(path: Path, size: int) -> Iterator[Tmpfs]:
    """Mount a tmpfs of `size` bytes at `path` (created) for the body; skip the test when that is impossible."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs (a full disk, a read-only file system) needs root; CI runs as root")
    path.mkdir(parents=True, exist_ok=True)
    try:
        _run("mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path))
    except OSError as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    try:
        yield Tmpfs(path, size)
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)

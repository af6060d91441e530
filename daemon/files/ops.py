"""File operations that never overwrite, never follow symlinks and survive a crash midway.

A name collision gets a ` (1)`, ` (2)`, … suffix. Every final name is claimed with `os.link`,
which fails rather than replaces, so two runs routing to the same name at once both win a name.
Across file systems the bytes go to a hidden temporary file first, are fsynced, and only then get
their final name, so a crash leaves the source or a complete destination, never a truncated one.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from daemon.errors import FolderBlocked, FolderUnavailable, InputError, UnsafePathError
from daemon.files.paths import MAX_NAME_BYTES

MAX_SUFFIX = 10_000
_TMP_PREFIX = ".gristmill-tmp-"

# A destination that cannot take a file now, but will once its user frees space or remounts it.
_OUT_OF_SPACE = {
    errno.ENOSPC: "its disk is full; free some space",
    errno.EDQUOT: "the disk quota there is used up; free some space or raise the quota",
    errno.EROFS: "its file system is read-only; mount it read-write",
}


@contextmanager
def _into(folder: Path) -> Iterator[None]:
    """FolderUnavailable for the errors that make `folder` an outage rather than a failure of the run."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _OUT_OF_SPACE:
            raise
        raise FolderUnavailable(folder, _OUT_OF_SPACE[exc.errno]) from exc


def candidates(folder: Path, name: str):
    """`name`, then `stem (1).suffix`, `stem (2).suffix`, … inside `folder`.

    A stem is shortened (never the suffix) so that a suffixed name still fits in 255 bytes.
    """
    path = Path(name)
    stem, suffix = (path.stem, path.suffix) if not name.startswith(".") else (name, "")
    yield folder / name
    for n in range(1, MAX_SUFFIX):
        tail = f" ({n}){suffix}"
        yield folder / f"{_fit(stem, MAX_NAME_BYTES - len(tail.encode()))}{tail}"


def _fit(text: str, limit: int) -> str:
    encoded = text.encode("utf-8", "surrogateescape")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", "ignore")


def move_file(src: Path, folder: Path, name: str | None = None) -> Path:
    """Move `src` into `folder` under a free name; return where it went."""
    dest = _first_free(folder, name or src.name, lambda dest: place_exact(src, dest))
    remove_moved(src)
    return dest


def _first_free(folder: Path, name: str, put: Callable[[Path], None]) -> Path:
    for dest in candidates(folder, name):
        try:
            put(dest)
        except FileExistsError:
            continue
        return dest
    raise UnsafePathError(f"no free name for {name} in {folder} after {MAX_SUFFIX} tries", name, folder)


def ensure_folder(folder: Path) -> None:
    """Create `folder` (and parents) when missing; refuse a symlinked folder and a file in the way."""
    try:
        mode = os.lstat(folder).st_mode
    except OSError:
        mode = 0
    if stat.S_ISDIR(mode):
        return  # the common case, in one system call (every move and write asks)
    if stat.S_ISLNK(mode):
        raise UnsafePathError(f"{folder} is a symbolic link; gristmill does not follow links", str(folder))
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise FolderBlocked(folder, blocking_file(folder) or folder) from exc


def blocking_file(folder: Path) -> Path | None:
    """The nearest existing part of `folder`'s path that is not a folder (a file in the way), if any."""
    for part in (folder, *folder.parents):
        if os.path.lexists(part):
            return None if part.is_dir() else part
    return None


def fsync_dir(folder: Path) -> None:
    """Make a rename or unlink in `folder` durable."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _check_source(src: Path) -> None:
    try:
        info = os.lstat(src)
    except FileNotFoundError as exc:
        raise InputError(f"{src} is gone") from exc
    if stat.S_ISLNK(info.st_mode):
        raise UnsafePathError(f"{src} is a symbolic link; gristmill does not follow links", str(src))
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{src} is not a regular file")


def _temporary(folder: Path) -> tuple[Path, int]:
    """A new hidden file in `folder` and its descriptor, open for writing (written through it, not reopened)."""
    for n in range(MAX_SUFFIX):
        tmp = folder / f"{_TMP_PREFIX}{os.getpid()}-{n}"
        try:
            return tmp, os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            continue
    raise UnsafePathError(f"cannot create a temporary file in {folder}", str(folder), folder)


# -- exact names: the caller picked the name and recorded it before the file is touched, so a crash
# in between is finished from disk (daemon/engine/actions.py). These never pick another name.


def place_exact(src: Path, dest: Path) -> None:
    """Give `src` the extra name `dest` (a copy across file systems); FileExistsError when taken.

    FolderUnavailable when the destination's disk is full or read-only (here and in the copies below).
    """
    _check_source(src)
    with _into(dest.parent):
        ensure_folder(dest.parent)
        try:
            os.link(src, dest, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK):
                raise
            copy_exact(src, dest)
        fsync_dir(dest.parent)


def copy_exact(src: Path, dest: Path) -> None:
    """Copy `src` to exactly `dest` via a fsynced temporary file; FileExistsError when taken."""
    _check_source(src)

    def fill(out: BinaryIO) -> None:
        with open(src, "rb") as source:
            shutil.copyfileobj(source, out, 1024 * 1024)

    _publish(dest, fill, copystat_from=src)


def write_exact(dest: Path, data: bytes) -> None:
    """Write `data` to exactly `dest` via a fsynced temporary file; FileExistsError when taken."""
    _publish(dest, lambda out: out.write(data))


def _publish(dest: Path, fill: Callable[[BinaryIO], object], copystat_from: Path | None = None) -> None:
    """Fill a hidden temporary file beside `dest`, fsync it, then link it to `dest` (never replacing)."""
    with _into(dest.parent):
        ensure_folder(dest.parent)
        tmp, fd = _temporary(dest.parent)
        try:
            with open(fd, "wb") as out:
                fill(out)
                out.flush()
                os.fsync(out.fileno())
            if copystat_from is not None:
                shutil.copystat(copystat_from, tmp, follow_symlinks=False)
            os.link(tmp, dest, follow_symlinks=False)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(dest.parent)


def sweep_temporaries(folder: Path) -> list[Path]:
    """Remove hidden temporary files left in `folder` by gristmill processes that died mid-write."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        pid = _owner_pid(entry.name)
        if pid is not None and pid != os.getpid() and not _alive(pid):
            Path(entry.path).unlink(missing_ok=True)
            removed.append(Path(entry.path))
    return removed


def _owner_pid(name: str) -> int | None:
    if not name.startswith(_TMP_PREFIX):
        return None
    pid = name[len(_TMP_PREFIX) :].split("-", 1)[0]
    return int(pid) if pid.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        pass
    return True


@contextmanager
def held(src: Path) -> Iterator[None]:
    """An exclusive lock on the file at `src` while moving it: a second move of the same file, by another
    workflow's run in this or another gristmill process, waits and then finds it gone (rather than
    linking it too and leaving two copies). Without a file, or on a file system without locks: no lock.
    """
    try:
        fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        fd = None  # gone, a link or unreadable: the move itself says so
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError:
                pass  # some network file systems have no locks; the move still never overwrites
        yield
    finally:
        if fd is not None:
            os.close(fd)


def remove_moved(src: Path) -> None:
    """The last step of a move, once the destination is durable: remove the source name."""
    os.unlink(src)
    fsync_dir(src.parent)

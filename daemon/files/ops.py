"""File operations that never overwrite, never follow symlinks and survive a crash midway.

A name collision gets a ` (1)`, ` (2)`, … suffix. Every final name is claimed with `os.link`,
which fails rather than replaces, so two runs routing to the same name at once both win a name.
Written bytes (and, across file systems, copied ones) go to a temporary file first, are fsynced,
and only then get their final name, so a crash leaves the source or a complete destination, never
a truncated one. On Linux a written file's temporary has no name at all (`O_TMPFILE`): a crash
before its link leaves nothing behind, and there is no name to create and remove again.
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

StrPath = str | os.PathLike[str]  # the hot paths take strings, made once, rather than parsing Paths
MAX_SUFFIX = 10_000
_TMP_PREFIX = ".gristmill-tmp-"
# A folder opened to link into and fsync; O_NOFOLLOW: a symlinked folder is refused (`ensure_folder`).
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# A file without a name, linked into place once complete; needs the kernel's O_TMPFILE and /proc to
# name its descriptor to linkat (AT_EMPTY_PATH would need a privilege). Elsewhere: a named temporary.
_UNNAMED = getattr(os, "O_TMPFILE", 0) if os.path.isdir("/proc/self/fd") else 0
UNNAMED_TEMPORARIES = bool(_UNNAMED)
# What a file system without unnamed files answers to O_TMPFILE.
_NO_UNNAMED = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL}

# A destination that cannot take a file now, but will once its user frees space or remounts it.
_OUT_OF_SPACE = {
    errno.ENOSPC: "its disk is full; free some space",
    errno.EDQUOT: "the disk quota there is used up; free some space or raise the quota",
    errno.EROFS: "its file system is read-only; mount it read-write",
}


@contextmanager
def _into(folder: StrPath) -> Iterator[None]:
    """FolderUnavailable for the errors that make `folder` an outage rather than a failure of the run."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in _OUT_OF_SPACE:
            raise
        raise FolderUnavailable(Path(folder), _OUT_OF_SPACE[exc.errno]) from exc


def candidates(folder: Path, name: str) -> Iterator[Path]:
    """`name`, then `stem (1).suffix`, `stem (2).suffix`, … inside `folder`.

    A stem is shortened (never the suffix) so that a suffixed name still fits in 255 bytes.
    """
    return map(Path, names(str(folder), name))


def names(folder: str, name: str) -> Iterator[str]:
    """`candidates` as strings: the paths every move and write tries, made without pathlib's parsing."""
    yield os.path.join(folder, name)
    stem, suffix = (name, "") if name.startswith(".") else _split_suffix(name)
    for n in range(1, MAX_SUFFIX):
        tail = f" ({n}){suffix}"
        yield os.path.join(folder, f"{_fit(stem, MAX_NAME_BYTES - len(tail.encode()))}{tail}")


def _split_suffix(name: str) -> tuple[str, str]:
    """`PurePath(name).stem` and `.suffix` of a file name (not a dotfile): the suffix from the last dot on."""
    dot = name.rfind(".")
    return (name[:dot], name[dot:]) if 0 < dot < len(name) - 1 else (name, "")


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


def ensure_folder(folder: StrPath) -> None:
    """Create `folder` (and parents) when missing; refuse a symlinked folder and a file in the way."""
    try:
        mode = os.lstat(folder).st_mode
    except OSError:
        mode = 0
    if stat.S_ISDIR(mode):
        return  # the common case, in one system call (every move and write asks)
    if stat.S_ISLNK(mode):
        raise UnsafePathError(f"{folder} is a symbolic link; gristmill does not follow links", str(folder))
    folder = Path(folder)
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


def _open_folder(folder: str) -> int | None:
    """`folder` made sure of as `ensure_folder` does, open to link into and fsync (one system call when it
    exists); None for a folder that cannot be opened (no read permission): then paths are used.
    """
    try:
        return os.open(folder, _FOLDER_FLAGS)
    except OSError:
        ensure_folder(folder)  # missing: made; a link or a file in the way: refused with the reason
    try:
        return os.open(folder, _FOLDER_FLAGS)
    except OSError:
        return None


def _close(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def _sync_folder(fd: int | None, folder: str) -> None:
    """Make a new name in `folder` durable (as `fsync_dir`), through its descriptor when it is open."""
    if fd is None:
        fsync_dir(folder)
        return
    try:
        os.fsync(fd)
    except OSError:
        pass


def fsync_dir(folder: StrPath) -> None:
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


def _check_source(src: StrPath) -> None:
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


def place_exact(src: StrPath, dest: StrPath) -> None:
    """Give `src` the extra name `dest` (a copy across file systems); FileExistsError when taken.

    FolderUnavailable when the destination's disk is full or read-only (here and in the copies below).
    """
    _check_source(src)
    parent, name = os.path.split(os.fspath(dest))
    with _into(parent):
        folder = _open_folder(parent)
        try:
            try:
                if folder is None:
                    os.link(src, dest, follow_symlinks=False)
                else:
                    os.link(src, name, dst_dir_fd=folder, follow_symlinks=False)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK):
                    raise
                copy_exact(Path(src), Path(dest))
            _sync_folder(folder, parent)
        finally:
            _close(folder)


def copy_exact(src: Path, dest: Path) -> None:
    """Copy `src` to exactly `dest` via a fsynced temporary file; FileExistsError when taken."""
    _check_source(src)

    def fill(out: BinaryIO) -> None:
        with open(src, "rb") as source:
            shutil.copyfileobj(source, out, 1024 * 1024)

    _publish(dest, fill, copystat_from=src)


def write_exact(dest: StrPath, data: bytes) -> None:
    """Write `data` to exactly `dest` via a fsynced temporary file; FileExistsError when taken."""
    parent, name = os.path.split(os.fspath(dest))
    with _into(parent):
        folder = _open_folder(parent)
        try:
            if folder is not None and _UNNAMED and _write_unnamed(folder, name, data):
                _sync_folder(folder, parent)
                return
        finally:
            _close(folder)
    _publish(Path(dest), lambda out: out.write(data))


def _write_unnamed(folder: int, name: str, data: bytes) -> bool:
    """Write `data` into a file with no name in `folder`, fsync it, then link it as `name` (never replacing).

    False, with nothing written, where the file system has no unnamed files.
    """
    try:
        fd = os.open(".", _UNNAMED | os.O_WRONLY | os.O_CLOEXEC, 0o644, dir_fd=folder)
    except OSError as exc:
        if exc.errno in _NO_UNNAMED:
            return False
        raise
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
        # linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N names the open file itself; EEXIST when taken.
        os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=folder, follow_symlinks=True)
    finally:
        os.close(fd)  # an unlinked unnamed file is freed here
    return True


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


def held(src: StrPath) -> _Held:
    """An exclusive lock on the file at `src` while moving it: a second move of the same file, by another
    workflow's run in this or another gristmill process, waits and then finds it gone (rather than
    linking it too and leaving two copies). Without a file, or on a file system without locks: no lock.
    """
    return _Held(src)


class _Held:
    """`held` as a plain context manager (a generator-based one costs more, on every move)."""

    def __init__(self, src: StrPath) -> None:
        self.src, self.fd = src, None

    def __enter__(self) -> None:
        try:
            self.fd = os.open(self.src, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            return  # gone, a link or unreadable: the move itself says so
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except OSError:
            pass  # some network file systems have no locks; the move still never overwrites

    def __exit__(self, *exc: object) -> None:
        _close(self.fd)
        self.fd = None


def remove_moved(src: StrPath) -> None:
    """The last step of a move, once the destination is durable: remove the source name."""
    os.unlink(src)
    fsync_dir(os.path.dirname(os.fspath(src)) or ".")

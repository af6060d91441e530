"""File operations that never overwrite, never follow symlinks and survive a crash midway.

A name collision gets a ` (1)`, ` (2)`, … suffix. Every final name is claimed with `os.link`,
which fails rather than replaces, so two runs routing to the same name at once both win a name.
Across file systems the bytes go to a hidden temporary file first, are fsynced, and only then get
their final name, so a crash leaves the source or a complete destination, never a truncated one.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

from daemon.errors import InputError, UnsafePathError

MAX_SUFFIX = 10_000
_TMP_PREFIX = ".gristmill-tmp-"


MAX_NAME_BYTES = 255


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
    _check_source(src)
    ensure_folder(folder)
    try:
        dest = _link_free_name(src, folder, name or src.name)
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK):
            raise
        dest = _copy_into(src, folder, name or src.name)
    os.unlink(src)
    fsync_dir(src.parent)
    return dest


def copy_file(src: Path, folder: Path, name: str | None = None) -> Path:
    """Copy `src` into `folder` under a free name; return the copy's path."""
    _check_source(src)
    ensure_folder(folder)
    return _copy_into(src, folder, name or src.name)


def write_new(path: Path, data: bytes) -> Path:
    """Write `data` to `path`, or to the first free suffixed name beside it; return the name used."""
    ensure_folder(path.parent)
    tmp = _temporary(path.parent)
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        return _link_free_name(tmp, path.parent, path.name)
    finally:
        tmp.unlink(missing_ok=True)
        fsync_dir(path.parent)


def ensure_folder(folder: Path) -> None:
    """Create `folder` (and parents) when missing; refuse a symlinked folder."""
    if folder.is_symlink():
        raise UnsafePathError(f"{folder} is a symbolic link; gristmill does not follow links", str(folder))
    folder.mkdir(parents=True, exist_ok=True)


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


def _link_free_name(src: Path, folder: Path, name: str) -> Path:
    for dest in candidates(folder, name):
        try:
            os.link(src, dest, follow_symlinks=False)
        except FileExistsError:
            continue
        fsync_dir(folder)
        return dest
    raise UnsafePathError(f"no free name for {name} in {folder} after {MAX_SUFFIX} tries", name, folder)


def _copy_into(src: Path, folder: Path, name: str) -> Path:
    tmp = _temporary(folder)
    try:
        with open(src, "rb") as source, open(tmp, "wb") as out:
            shutil.copyfileobj(source, out, 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())
        shutil.copystat(src, tmp, follow_symlinks=False)
        return _link_free_name(tmp, folder, name)
    finally:
        tmp.unlink(missing_ok=True)


def _temporary(folder: Path) -> Path:
    for n in range(MAX_SUFFIX):
        tmp = folder / f"{_TMP_PREFIX}{os.getpid()}-{n}"
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            return tmp
        except FileExistsError:
            continue
    raise UnsafePathError(f"cannot create a temporary file in {folder}", str(folder), folder)


# -- exact names: the caller picked the name and recorded it before the file is touched, so a crash
# in between is finished from disk (daemon/engine/actions.py). These never pick another name.


def place_exact(src: Path, dest: Path) -> None:
    """Give `src` the extra name `dest` (a copy across file systems); FileExistsError when taken."""
    _check_source(src)
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
    ensure_folder(dest.parent)
    tmp = _temporary(dest.parent)
    try:
        with open(src, "rb") as source, open(tmp, "wb") as out:
            shutil.copyfileobj(source, out, 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())
        shutil.copystat(src, tmp, follow_symlinks=False)
        os.link(tmp, dest, follow_symlinks=False)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(dest.parent)


def write_exact(dest: Path, data: bytes) -> None:
    """Write `data` to exactly `dest` via a fsynced temporary file; FileExistsError when taken."""
    ensure_folder(dest.parent)
    tmp = _temporary(dest.parent)
    try:
        with open(tmp, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.link(tmp, dest, follow_symlinks=False)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(dest.parent)


def remove_moved(src: Path) -> None:
    """The last step of a move, once the destination is durable: remove the source name."""
    os.unlink(src)
    fsync_dir(src.parent)

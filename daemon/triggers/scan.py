"""Listing a watched folder oldest first without holding the whole listing in memory.

A folder of 10,000 (or 1,000,000) files must not become a list of 10,000 paths. The scan walks
the folder once and streams (mtime, path) rows into a private temporary SQLite database (the
stdlib's `sqlite3.connect("")`: on disk, deleted on close, a page cache of about 2 MB), then
reads them back `ORDER BY mtime, path`; SQLite's sorter spills to disk when the rows outgrow its
memory. So the order is exact, memory stays bounded and the folder is walked once.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from daemon.triggers.match import Matcher

_ROWS = 500  # rows fetched from the sorter at a time


@dataclass(frozen=True)
class Found:
    """One wanted entry of a watched folder."""

    path: Path
    mtime_ns: int
    is_symlink: bool


def oldest_first(matcher: Matcher) -> Iterator[Found]:
    """Every wanted file (and symlink) under the matcher's root, oldest first, streamed."""
    with closing(sqlite3.connect("")) as db:
        db.execute("CREATE TABLE found (mtime INTEGER, path BLOB, link INTEGER)")
        # Paths as bytes: a file name that is not valid UTF-8 still round-trips.
        db.executemany("INSERT INTO found VALUES (?, ?, ?)", _entries(matcher, matcher.root, ()))
        rows = db.execute("SELECT mtime, path, link FROM found ORDER BY mtime, path")
        while batch := rows.fetchmany(_ROWS):
            for mtime_ns, path, link in batch:
                yield Found(Path(os.fsdecode(path)), mtime_ns, bool(link))


def _entries(matcher: Matcher, folder: Path, relative: tuple[str, ...]) -> Iterator[tuple[int, bytes, bool]]:
    try:
        listing = os.scandir(folder)
    except OSError:  # vanished or unreadable: the next rescan looks again
        return
    with listing:
        subfolders = []
        for entry in listing:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            mode = info.st_mode
            if stat.S_ISDIR(mode):
                subfolders.append(entry.name)
            elif (stat.S_ISREG(mode) or stat.S_ISLNK(mode)) and matcher.wants_listed(relative, entry.name):
                yield info.st_mtime_ns, os.fsencode(entry.path), stat.S_ISLNK(mode)
    for name in subfolders:
        if matcher.wants_dir((*relative, name)):
            yield from _entries(matcher, folder / name, (*relative, name))
